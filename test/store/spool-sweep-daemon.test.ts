import test from 'ava';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { newUid, writeImageFile } from '../helpers/dicom-factory.js';
import { storescu } from '../helpers/dcmtk.js';
import { startGateway, writeGatewayConfig } from '../helpers/gateway-process.js';

// The start-up sweep in the real daemon: what a failed commit followed by a kill would leave (a whole file
// under studies/ with no row) is removed; an acknowledged file deleted by hand is reported, and the daemon runs.
test('at start, spool files without a row are removed and counted, rows without a file are logged with their ids, and the daemon serves', async (t) => {
  const setup = await writeGatewayConfig({ models: { demo: '/nonexistent/model' } });
  const first = await startGateway({}, setup);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sweep-in-'));
  const kept = await writeImageFile(dir, { studyInstanceUid: newUid() });
  const lost = await writeImageFile(dir, { studyInstanceUid: newUid() });
  t.is((await storescu(first.port, [kept.path, lost.path])).code, 0);
  await first.stop();

  const studies = path.join(setup.workDir, 'data', 'spool', 'studies');
  const orphanStudy = newUid();
  const orphan = path.join(studies, orphanStudy, `${newUid()}.dcm`);
  mkdirSync(path.dirname(orphan));
  writeFileSync(orphan, 'never acknowledged');
  rmSync(path.join(studies, lost.studyInstanceUid, `${lost.sopInstanceUid}.dcm`));

  const second = await startGateway({}, setup);
  t.teardown(() => second.stop());
  t.like(
    second.logs.find((l) => l.event === 'STORE-2004'),
    { level: 'warn', count: 1 },
  );
  const missing = second.logs.find((l) => l.event === 'STORE-2005');
  t.like(missing, { level: 'error', count: 1 });
  t.like((missing?.instances as unknown[])?.[0], {
    sopInstanceUid: lost.sopInstanceUid,
    studyInstanceUid: lost.studyInstanceUid,
  });
  t.false(existsSync(path.join(studies, orphanStudy)));
  t.true(existsSync(path.join(studies, kept.studyInstanceUid, `${kept.sopInstanceUid}.dcm`)));
  t.is((await storescu(second.port, [(await writeImageFile(dir, {})).path])).code, 0, 'still serving');
});
