import test from 'ava';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { newUid, writeImageFile } from '../helpers/dicom-factory.js';
import { listJobs, runCli, startGateway } from '../helpers/gateway-process.js';
import { freePort } from '../helpers/ports.js';

test('echo and send talk to a real SCP (our own daemon), and say so when nobody listens', async (t) => {
  const gateway = await startGateway();
  t.teardown(() => gateway.stop());
  const to = `127.0.0.1:${gateway.port}`;
  const echoed = await runCli(['echo', '--to', to]);
  t.is(echoed.code, 0, echoed.stderr);
  t.regex(echoed.stdout, /success/);

  const dir = mkdtempSync(path.join(os.tmpdir(), 'send-'));
  const studyInstanceUid = newUid();
  await writeImageFile(path.join(dir), { studyInstanceUid, seed: 1 });
  await writeImageFile(path.join(dir), { studyInstanceUid, seed: 2, instanceNumber: 2 });
  const sent = await runCli(['send', dir, '--to', to]);
  t.is(sent.code, 0, sent.stderr);
  t.regex(sent.stdout, /2 of 2 stored/);
  t.like(
    (await listJobs(gateway.configPath)).studies.find((s) => s.studyInstanceUid === studyInstanceUid),
    { instanceCount: 2, callingAe: 'CXR_SEND' },
  );

  const nobody = await runCli(['echo', '--to', `127.0.0.1:${await freePort()}`, '--timeout', '3']);
  t.is(nobody.code, 1);
  t.regex(nobody.stdout, /C-ECHO failed/);
});
