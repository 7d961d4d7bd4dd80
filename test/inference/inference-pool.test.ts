import test from 'ava';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { selectBackend } from '../../src/inference/backend.js';
import { BatchRunner } from '../../src/inference/batch-runner.js';
import { InferencePool } from '../../src/inference/inference-pool.js';
import { loadModel } from '../../src/inference/model-loader.js';
import { createLogger } from '../../src/logging/logger.js';
import { makeImageFile, writeImageFile } from '../helpers/dicom-factory.js';
import { maxAbsDiff, tinyModelDir } from '../helpers/tiny-densenet.js';
import { PassThrough } from 'node:stream';

const quiet = createLogger({ level: 'error', format: 'json', stream: new PassThrough() });

async function images(count: number) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pool-'));
  const files: string[] = [];
  for (let i = 0; i < count; i += 1) files.push((await writeImageFile(dir, { seed: i * 7 + 1, photometric: i % 2 ? 'MONOCHROME1' : 'MONOCHROME2' })).path);
  return { dir, files };
}

test('an image alone and inside a batch of 8 gets the same probabilities', async (t) => {
  await selectBackend('cpu');
  const runner = new BatchRunner(loadModel(tinyModelDir()));
  const { files } = await images(8);
  const alone = await runner.classifyFiles([files[3] as string]);
  const batch = await runner.classifyFiles(files);
  const a = alone[0];
  const b = batch[3];
  if (!a?.ok || !b?.ok) return t.fail('classification failed');
  t.true(maxAbsDiff(a.classification.probabilities, b.classification.probabilities) < 1e-6);
  t.true(Math.abs(a.classification.probabilities.reduce((x, y) => x + y, 0) - 1) < 1e-5);
  runner.model.network.dispose();
});

test('worker threads on wasm classify like the in-process cpu backend; a broken file fails alone with its reason', async (t) => {
  const modelDir = tinyModelDir();
  const { dir, files } = await images(3);
  const broken = path.join(dir, 'broken.dcm');
  const image = makeImageFile({});
  writeFileSync(broken, image.bytes.subarray(0, image.bytes.length - 5000));
  const pool = await InferencePool.start({ modelDir, backend: 'wasm', workers: 2, cores: 2, logger: quiet });
  t.teardown(() => pool.stop());
  t.is(pool.backend, 'wasm');
  t.is(pool.size, 2);
  const [first, second] = await Promise.all([pool.classify([files[0] as string, broken]), pool.classify([files[1] as string, files[2] as string])]);
  const outcomes = [...(first ?? []), ...(second ?? [])];
  t.like(outcomes[1], { ok: false });
  if (outcomes[1]?.ok === false) t.regex(outcomes[1].code, /^PIXELS_/);

  await selectBackend('cpu');
  const reference = await new BatchRunner(loadModel(modelDir)).classifyFiles([files[0] as string, files[1] as string, files[2] as string]);
  const pooled = [outcomes[0], outcomes[2], outcomes[3]];
  reference.forEach((r, i) => {
    const p = pooled[i];
    if (!r.ok || !p?.ok) return t.fail(`image ${i} failed`);
    t.true(maxAbsDiff(r.classification.probabilities, p.classification.probabilities) < 1e-4, `image ${i}`);
  });
});

test('a model directory with a bad checksum stops the pool from starting, with the reason', async (t) => {
  const modelDir = tinyModelDir({ weights: { file: 'weights.safetensors', format: 'safetensors', sha256: '0'.repeat(64) } });
  await t.throwsAsync(InferencePool.start({ modelDir, backend: 'cpu', workers: 1, cores: 2, logger: quiet }), { message: /SHA-256 is [0-9a-f]{64} but the manifest says 0{64}/ });
});
