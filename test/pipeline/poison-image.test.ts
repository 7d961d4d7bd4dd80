import test from 'ava';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { newUid, writeImageFile } from '../helpers/dicom-factory.js';
import { storescu } from '../helpers/dcmtk.js';
import { runCli, startGateway } from '../helpers/gateway-process.js';
import { tinyModelDir } from '../helpers/tiny-densenet.js';

// A poison image, with a real crash: the daemon's inference workers exit (process.exit in the thread) on the
// image whose SOP Instance UID is in CXR_GATEWAY_TEST_CRASH_ON, which the daemon inherits from this process.
const poisonUid = newUid();
process.env.CXR_GATEWAY_TEST_CRASH_ON = poisonUid;

interface Listing {
  jobs: Array<{ id: number; studyInstanceUid: string; state: string; attempts: number; lastError: string | null }>;
}

test('a poison image crashes workers until it is failed with its reason; the other images and studies are processed and the pool is back to full strength', async (t) => {
  const out = mkdtempSync(path.join(os.tmpdir(), 'poison-out-'));
  const gateway = await startGateway({
    models: { tiny: tinyModelDir() },
    inference: { defaultModel: 'tiny', workers: 2, backend: 'wasm', maxCrashesPerImage: 3 },
    destinations: {
      pacs: [{ type: 'folder', name: 'pacs-folder', path: path.join(out, 'dicom') }],
      ris: [{ type: 'folder', name: 'ris-folder', path: path.join(out, 'hl7'), sendingApplication: 'CXR_GATEWAY' }],
    },
    rules: [
      {
        name: 'chest',
        match: { attributes: { Modality: { oneOf: ['CR', 'DX'] } } },
        action: { model: 'tiny', outputs: ['sc'], pacs: ['pacs-folder'], ris: ['ris-folder'] },
      },
    ],
  } as never);
  t.teardown(() => gateway.stop());
  const ready = await gateway.waitForLog((l) => l.event === 'GATEWAY-7010', 'the admin port');
  const healthz = String(ready.url);

  const dir = mkdtempSync(path.join(os.tmpdir(), 'poison-in-'));
  const poisoned = newUid();
  const clean = newUid();
  const good = await writeImageFile(dir, { studyInstanceUid: poisoned, viewPosition: 'PA', seed: 1 });
  const poison = await writeImageFile(dir, {
    studyInstanceUid: poisoned,
    sopInstanceUid: poisonUid,
    viewPosition: 'PA',
    instanceNumber: 2,
    seed: 2,
  });
  const other = await writeImageFile(dir, { studyInstanceUid: clean, viewPosition: 'PA', seed: 3 });
  t.is((await storescu(gateway.port, [good.path, poison.path, other.path])).code, 0);

  const failed = await gateway.waitForLog((l) => l.event === 'ANALYSIS-5013', 'the poison image failed', 120_000);
  t.like(failed, { level: 'error', sopInstanceUid: poisonUid, studyInstanceUid: poisoned, crashes: 3 });
  for (const study of [poisoned, clean]) {
    await gateway.waitForLog(
      (l) => l.event === 'EXPORT-6002' && l.studyInstanceUid === study,
      `the RIS report of ${study}`,
      120_000,
    );
  }
  t.true(
    gateway.logs.some((l) => l.event === 'ANALYSIS-5010' && l.sopInstanceUid === good.sopInstanceUid),
    "the poison image's neighbour was processed",
  );
  t.is(gateway.logs.filter((l) => l.event === 'ANALYSIS-5003').length, 3, 'three crashes, no more');

  const result = await runCli(['jobs', '--config', gateway.configPath, '--json']);
  const listing = JSON.parse(result.stdout) as Listing;
  const job = listing.jobs.find((j) => j.studyInstanceUid === poisoned);
  t.like(job, { state: 'done' });
  t.regex(
    job?.lastError ?? '',
    new RegExp(
      `1 of 2 image\\(s\\) failed: ${poisonUid.replace(/\./g, '\\.')}: WORKER_CRASHED: the inference worker crashed 3 times on this image`,
    ),
  );
  t.true((job?.attempts ?? 0) >= 1, 'jobs.attempts is written');
  t.like(
    listing.jobs.find((j) => j.studyInstanceUid === clean),
    { state: 'done', lastError: null },
  );

  // Every crashed worker was replaced: two live workers of two, and healthz says so.
  await gateway.waitForLog(
    () => gateway.logs.filter((l) => l.event === 'ANALYSIS-5004').length === 3,
    'three replacements',
    60_000,
  );
  const health = (await (await fetch(healthz)).json()) as {
    status: string;
    checks: { models: Array<Record<string, unknown>> };
  };
  t.like(health.checks.models[0], {
    name: 'tiny',
    loaded: true,
    workers: 2,
    wantedWorkers: 2,
    restartingWorkers: 0,
    workerCrashes: 3,
  });
  t.is(health.status, 'ok');
});
