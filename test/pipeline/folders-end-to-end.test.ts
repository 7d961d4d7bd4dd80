import test from 'ava';
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { dciodvfy, newUid, writeImageFile } from '../helpers/dicom-factory.js';
import { storescu } from '../helpers/dcmtk.js';
import { listJobs, startGateway } from '../helpers/gateway-process.js';
import { runCommand } from '../helpers/run-command.js';
import { tinyModelDir } from '../helpers/tiny-densenet.js';

// The whole trip on the embedded-default shape (folder destinations), with the tiny test model:
// storescu -> SCP -> store -> assembly -> routing -> infer + LRP + SC in a worker -> folders.
test('a frontal chest study goes in, a Secondary Capture and an ORU come out, a lateral is skipped', async (t) => {
  const out = mkdtempSync(path.join(os.tmpdir(), 'e2e-out-'));
  const gateway = await startGateway({
    models: { tiny: tinyModelDir() },
    inference: { defaultModel: 'tiny', workers: 1, backend: 'wasm' },
    destinations: {
      pacs: [{ type: 'folder', name: 'pacs-folder', path: path.join(out, 'dicom') }],
      ris: [{ type: 'folder', name: 'ris-folder', path: path.join(out, 'hl7'), sendingApplication: 'CXR_GATEWAY' }],
    },
    rules: [
      {
        name: 'chest',
        match: { attributes: { Modality: { oneOf: ['CR', 'DX'] } } },
        action: { model: 'tiny', outputs: ['sc', 'sr'], pacs: ['pacs-folder'], ris: ['ris-folder'] },
      },
    ],
  } as never);
  t.teardown(() => gateway.stop());
  const studyInstanceUid = newUid();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'e2e-in-'));
  const pa = await writeImageFile(dir, { studyInstanceUid, viewPosition: 'PA', accessionNumber: 'ACC-42', seed: 3 });
  const lateral = await writeImageFile(dir, { studyInstanceUid, viewPosition: 'LL', instanceNumber: 2, seed: 4 });
  t.is((await storescu(gateway.port, [pa.path, lateral.path])).code, 0);

  await gateway.waitForLog(
    (l) => l.event === 'EXPORT-6002' && l.studyInstanceUid === studyInstanceUid,
    'the RIS report',
    60_000,
  );
  const listing = await listJobs(gateway.configPath);
  t.like(
    listing.jobs.find((j) => j.studyInstanceUid === studyInstanceUid),
    { state: 'done' },
  );

  const objects = readdirSync(path.join(out, 'dicom', studyInstanceUid));
  t.is(objects.length, 2, 'one SC and one SR for the one frontal image');
  for (const name of objects) {
    const file = path.join(out, 'dicom', studyInstanceUid, name);
    t.deepEqual((await dciodvfy(file)).errors, [], name);
    const dump = await runCommand('dcmdump', ['-q', '+P', '0020,000D', file]);
    t.regex(dump.stdout, new RegExp(studyInstanceUid.replace(/\./g, '\\.')), 'same study as the source');
  }
  const messages = readdirSync(path.join(out, 'hl7'));
  t.is(messages.length, 1);
  const oru = readFileSync(path.join(out, 'hl7', messages[0] as string), 'utf8');
  t.regex(oru, /^MSH\|\^~\\&\|CXR_GATEWAY\|/);
  t.regex(oru, /\rOBR\|([^|]*\|){17}ACC-42\|/);
  t.regex(oru, /\rOBX\|\d+\|NM\|/);
  t.false(oru.includes('\n'));
  t.true(gateway.logs.some((l) => l.event === 'ANALYSIS-5010' && l.sopInstanceUid === pa.sopInstanceUid));
  t.false(existsSync(path.join(out, 'dicom', studyInstanceUid, `${lateral.sopInstanceUid}.dcm`)));
});
