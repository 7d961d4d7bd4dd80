// How long the inference pool is without a worker after one dies: crash a worker (a real exit, through the
// test-only CXR_GATEWAY_TEST_CRASH_ON hook), then time the next request, which waits for the replacement to
// load its backend and model and answers it. Restart backoff 0 here, to time the replacement itself.
//   npx tsc -p tsconfig.json && node dist/bench/pool-restart.js [rounds]
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { InferencePool } from '../src/analysis/inference-pool.js';
import { createLogger } from '../src/logging/logger.js';
import { makeImageFile } from '../test/helpers/dicom-factory.js';
import { tinyModelDir } from '../test/helpers/tiny-densenet.js';

const MARKER = 'POISON-bench';
process.env.CXR_GATEWAY_TEST_CRASH_ON = MARKER;
const rounds = Number(process.argv[2] ?? 5);
const dir = mkdtempSync(path.join(os.tmpdir(), 'pool-restart-'));
const poisonFile = path.join(dir, 'poison.dcm');
const good = path.join(dir, 'good.dcm');
writeFileSync(poisonFile, makeImageFile({}).bytes);
writeFileSync(good, makeImageFile({ seed: 1 }).bytes);
// The worker crashes on the image with this SOP Instance UID; nothing is written (no outputs asked for).
const request = (sopInstanceUid: string, file: string) => ({
  images: [{ sopInstanceUid, path: file }],
  outputs: [],
  revision: 0,
  createdAt: new Date(0).toISOString(),
  outDir: dir,
  target: 'predicted',
  usageNotice: '',
});
const logger = createLogger({ level: 'error', format: 'json', stream: new PassThrough() });
const pool = await InferencePool.start({
  modelDir: tinyModelDir(),
  backend: 'wasm',
  workers: 1,
  cores: 2,
  logger,
  restartBackoff: { initialMs: 0 },
});
const times: number[] = [];
for (let i = 0; i < rounds; i += 1) {
  await pool.process(request(MARKER, poisonFile)).catch(() => undefined);
  const started = performance.now();
  const [outcome] = await pool.process(request('good', good));
  if (outcome?.kind !== 'written') throw new Error('the replacement worker did not analyse the image');
  times.push(Math.round(performance.now() - started));
}
times.sort((a, b) => a - b);
console.log(
  JSON.stringify({
    rounds,
    msCrashToAnswered: times,
    median: times[Math.floor(times.length / 2)],
    status: pool.status(),
  }),
);
await pool.stop();
