import test from 'ava';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { analyseImages } from '../../src/analysis/analyse-images.js';
import type { ImageWorkRequest, ImageWorkResult } from '../../src/analysis/image-work.js';
import { InferencePool, WorkerCrashedError } from '../../src/analysis/inference-pool.js';
import { GatewayError } from '../../src/errors.js';
import { createTfjsEngine } from '../../src/engines/tfjs-engine.js';
import { createLogger } from '../../src/logging/logger.js';
import { makeImageFile, writeImageFile } from '../helpers/dicom-factory.js';
import { maxAbsDiff, tinyModelDir } from '../helpers/tiny-densenet.js';
import { PassThrough } from 'node:stream';
import { waitUntil } from '../helpers/wait-until.js';

const quiet = createLogger({ level: 'error', format: 'json', stream: new PassThrough() });

/** A request to analyse `files` (each named by its path, or by `ids`) without writing objects. */
function request(files: string[], ids: string[] = files): ImageWorkRequest {
  return {
    images: files.map((p, i) => ({ sopInstanceUid: ids[i] ?? p, path: p })),
    outputs: [],
    revision: 0,
    createdAt: new Date(0).toISOString(),
    outDir: mkdtempSync(path.join(os.tmpdir(), 'pool-out-')),
    target: 'predicted',
    usageNotice: '',
  };
}

const written = (results: ImageWorkResult[]) => results.every((r) => r.kind === 'written');

async function images(count: number) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pool-'));
  const files: string[] = [];
  for (let i = 0; i < count; i += 1)
    files.push(
      (await writeImageFile(dir, { seed: i * 7 + 1, photometric: i % 2 ? 'MONOCHROME1' : 'MONOCHROME2' })).path,
    );
  return { dir, files };
}

test('an image alone and inside a batch of 8 gets the same probabilities', async (t) => {
  const engine = await createTfjsEngine({ modelDir: tinyModelDir(), backend: 'cpu', allowSoftwareGpu: false, lrp: {} });
  t.teardown(() => engine.dispose());
  const { files } = await images(8);
  const alone = await analyseImages(engine, [{ id: 3, path: files[3] as string }], { kind: 'classify' });
  const batch = await analyseImages(
    engine,
    files.map((p, id) => ({ id, path: p })),
    { kind: 'classify' },
  );
  const a = alone[0];
  const b = batch[3];
  if (a?.kind !== 'analysed' || b?.kind !== 'analysed') return t.fail('classification failed');
  t.is(b.id, 3);
  t.true(maxAbsDiff(a.classification.probabilities, b.classification.probabilities) < 1e-6);
  t.true(Math.abs(a.classification.probabilities.reduce((x, y) => x + y, 0) - 1) < 1e-5);
});

test('worker threads on wasm classify like the in-process cpu backend; a broken file fails alone with its reason', async (t) => {
  const modelDir = tinyModelDir();
  const { dir, files } = await images(3);
  const broken = path.join(dir, 'broken.dcm');
  const image = makeImageFile({});
  writeFileSync(broken, image.bytes.subarray(0, image.bytes.length - 5000));
  const pool = await InferencePool.start({
    modelDir,
    engine: 'tfjs',
    backend: 'wasm',
    workers: 2,
    cores: 2,
    logger: quiet,
  });
  t.teardown(() => pool.stop());
  t.is(pool.backend, 'tfjs/wasm');
  t.is(pool.size, 2);
  const [first, second] = await Promise.all([
    pool.process(request([files[0] as string, broken])),
    pool.process(request([files[1] as string, files[2] as string])),
  ]);
  const outcomes = [...first, ...second];
  t.like(outcomes[1], { kind: 'failed', sopInstanceUid: broken });
  if (outcomes[1]?.kind === 'failed') t.regex(outcomes[1].code, /^PIXELS_/);

  const reference = await analyseImages(
    await createTfjsEngine({ modelDir, backend: 'cpu', allowSoftwareGpu: false, lrp: {} }),
    [0, 1, 2].map((i) => ({ id: i, path: files[i] as string })),
    { kind: 'classify' },
  );
  const pooled = [outcomes[0], outcomes[2], outcomes[3]];
  reference.forEach((r, i) => {
    const p = pooled[i];
    if (r.kind !== 'analysed' || p?.kind !== 'written') return t.fail(`image ${i} failed`);
    t.true(maxAbsDiff(r.classification.probabilities, p.classification.probabilities) < 1e-4, `image ${i}`);
  });
});

test('a request that fails inside the worker rejects with the GatewayError code the worker raised, not a bare Error', async (t) => {
  const { files } = await images(1);
  const pool = await InferencePool.start({
    modelDir: tinyModelDir(),
    engine: 'tfjs',
    backend: 'wasm',
    workers: 1,
    cores: 2,
    logger: quiet,
  });
  t.teardown(() => pool.stop());
  // The tiny model has no class 'Cardiomegaly': the worker's LRP throws EXPLAIN_TARGET_UNKNOWN for the whole request.
  const error = await t.throwsAsync(pool.process({ ...request([files[0] as string]), target: 'Cardiomegaly' }), {
    instanceOf: GatewayError,
    code: 'EXPLAIN_TARGET_UNKNOWN',
  });
  t.regex(error?.message ?? '', /Cardiomegaly/);
});

test('a model directory with a bad checksum stops the pool from starting, with the reason', async (t) => {
  const modelDir = tinyModelDir({
    weights: { file: 'weights.safetensors', format: 'safetensors', sha256: '0'.repeat(64) },
  });
  await t.throwsAsync(
    InferencePool.start({ modelDir, engine: 'tfjs', backend: 'cpu', workers: 1, cores: 2, logger: quiet }),
    {
      message: /SHA-256 is [0-9a-f]{64} but the manifest says 0{64}/,
    },
  );
});

// A real crash: the worker exits (process.exit in the thread) on a request holding an image with this SOP Instance UID.
const POISON = 'POISON-7f3a';
process.env.CXR_GATEWAY_TEST_CRASH_ON = POISON;

/** Timers the test fires by hand, so that the restart backoff can be read off and stepped through. */
function manualTimers() {
  const due: Array<{ run: () => void; ms: number; handle: number }> = [];
  let n = 0;
  return {
    due,
    timers: {
      setTimeout: (run: () => void, ms: number) => {
        const handle = (n += 1);
        due.push({ run, ms, handle });
        return handle;
      },
      clearTimeout: (handle: unknown) => {
        const i = due.findIndex((d) => d.handle === handle);
        if (i >= 0) due.splice(i, 1);
      },
    },
    fire(): number {
      const next = due.shift();
      if (!next) throw new Error('no restart scheduled');
      next.run();
      return next.ms;
    },
  };
}

test('a worker that dies is replaced with a growing, bounded delay; only its own request fails, with WorkerCrashedError', async (t) => {
  const { dir, files } = await images(2);
  const poisonFile = path.join(dir, 'poison.dcm');
  writeFileSync(poisonFile, makeImageFile({}).bytes);
  const poison = request([poisonFile], [POISON]);
  const clock = manualTimers();
  const pool = await InferencePool.start({
    modelDir: tinyModelDir(),
    engine: 'tfjs',
    backend: 'wasm',
    workers: 2,
    cores: 2,
    logger: quiet,
    timers: clock.timers,
    restartBackoff: { initialMs: 100, maxMs: 300 },
  });
  t.teardown(() => pool.stop());
  t.deepEqual(pool.status(), { wanted: 2, live: 2, restarting: 0, crashes: 0 });

  // The poison request goes to one worker, a good one to the other: the good one is not touched.
  const [lost, kept] = await Promise.allSettled([pool.process(poison), pool.process(request([files[0] as string]))]);
  t.is(lost.status, 'rejected');
  if (lost.status === 'rejected') {
    t.true(lost.reason instanceof WorkerCrashedError);
    t.is((lost.reason as WorkerCrashedError).code, 'WORKER_CRASHED');
    t.regex((lost.reason as Error).message, /exit code 70/);
  }
  t.like(kept, { status: 'fulfilled', value: [{ kind: 'written' }] });
  t.deepEqual(pool.status(), { wanted: 2, live: 1, restarting: 1, crashes: 1 });

  t.is(clock.fire(), 100, 'first replacement after initialMs');
  await waitUntil(() => pool.status().live === 2, 'the replacement worker');
  t.deepEqual(pool.status(), { wanted: 2, live: 2, restarting: 0, crashes: 1 });

  // Crashes with no request finished in between: the delay doubles, and stops at maxMs.
  await t.throwsAsync(pool.process(poison), { instanceOf: WorkerCrashedError });
  t.is(clock.fire(), 200);
  await waitUntil(() => pool.status().live === 2, 'the second replacement');
  await t.throwsAsync(pool.process(poison), { instanceOf: WorkerCrashedError });
  t.is(clock.fire(), 300, 'capped at maxMs');
  await waitUntil(() => pool.status().live === 2, 'the third replacement');

  // Back to full strength: both workers serve, and a finished request resets the backoff.
  const outcomes = await Promise.all([
    pool.process(request([files[0] as string])),
    pool.process(request([files[1] as string])),
  ]);
  t.true(written(outcomes.flat()));
  await t.throwsAsync(pool.process(poison), { instanceOf: WorkerCrashedError });
  t.is(clock.fire(), 100);
  await waitUntil(() => pool.status().live === 2, 'the fourth replacement');
  t.is(pool.status().crashes, 4);
});

test('with every worker dead, requests wait for the replacement instead of failing', async (t) => {
  const { dir, files } = await images(1);
  const poisonFile = path.join(dir, 'poison.dcm');
  writeFileSync(poisonFile, makeImageFile({}).bytes);
  const poison = request([poisonFile], [POISON]);
  const clock = manualTimers();
  const pool = await InferencePool.start({
    modelDir: tinyModelDir(),
    engine: 'tfjs',
    backend: 'wasm',
    workers: 1,
    cores: 2,
    logger: quiet,
    timers: clock.timers,
  });
  t.teardown(() => pool.stop());
  await t.throwsAsync(pool.process(poison), { instanceOf: WorkerCrashedError });
  t.like(pool.status(), { live: 0, restarting: 1 });
  const waiting = pool.process(request([files[0] as string]));
  clock.fire();
  t.like(await waiting, [{ kind: 'written' }]);
  t.like(pool.status(), { wanted: 1, live: 1, restarting: 0 });
});

test('stop(deadline) lets the request in flight finish before the deadline; stop() without one rejects it with POOL_STOPPED', async (t) => {
  const { dir, files } = await images(2);
  const request = (file: string, out: string) => ({
    images: [{ sopInstanceUid: '1.2.3.4', path: file }],
    outputs: [] as [],
    revision: 0,
    createdAt: '2026-01-05T08:00:00.000Z',
    outDir: path.join(dir, out),
    target: 'predicted' as const,
    usageNotice: 'test',
  });
  const draining = await InferencePool.start({
    modelDir: tinyModelDir(),
    engine: 'tfjs',
    backend: 'wasm',
    workers: 1,
    cores: 2,
    logger: quiet,
  });
  const finished = draining.process(request(files[0] as string, 'a'));
  await draining.stop(Date.now() + 60_000);
  const [result] = await finished;
  t.is(result?.kind, 'written');
  await t.throwsAsync(draining.process(request(files[0] as string, 'b')), { code: 'POOL_STOPPED' });

  const cut = await InferencePool.start({
    modelDir: tinyModelDir(),
    engine: 'tfjs',
    backend: 'wasm',
    workers: 1,
    cores: 2,
    logger: quiet,
  });
  const cutOff = cut.process(request(files[1] as string, 'c'));
  await cut.stop();
  await t.throwsAsync(cutOff, { message: /the inference pool is stopped/ });
});

function capturingLogger() {
  const stream = new PassThrough();
  const lines: Array<Record<string, unknown>> = [];
  let buffered = '';
  stream.on('data', (chunk: Buffer) => {
    buffered += chunk.toString('utf8');
    const parts = buffered.split('\n');
    buffered = parts.pop() ?? '';
    for (const part of parts) if (part.trim() !== '') lines.push(JSON.parse(part) as Record<string, unknown>);
  });
  return { logger: createLogger({ level: 'info', format: 'json', stream }), lines };
}

test('ONNX Runtime on the CPU: one worker by default, with every core as its intra-op threads; the log says engine and device', async (t) => {
  const { logger, lines } = capturingLogger();
  const pool = await InferencePool.start({
    modelDir: tinyModelDir(),
    engine: 'onnxruntime',
    backend: 'wasm',
    onnxruntime: { executionProviders: ['cpu'], intraOpThreads: 'auto' },
    workers: 'auto',
    cores: 3,
    logger,
  });
  t.teardown(() => pool.stop());
  t.is(pool.size, 1);
  t.is(pool.backend, 'onnxruntime/cpu');
  t.is(pool.engine?.details.threads, '3');
  const { files } = await images(2);
  t.true(written(await pool.process(request(files))));
  await waitUntil(() => lines.some((l) => l.event === 'ANALYSIS-5001'), 'the pool-ready line');
  t.like(
    lines.find((l) => l.event === 'ANALYSIS-5015'),
    { engine: 'onnxruntime', device: 'cpu' },
  );
  t.like(
    lines.find((l) => l.event === 'ANALYSIS-5001'),
    { engine: 'onnxruntime', device: 'cpu', workers: 1 },
  );
});

test('TF.js on a CPU backend: cores - 1 workers by default, and the log says engine and device', async (t) => {
  const { logger, lines } = capturingLogger();
  const pool = await InferencePool.start({
    modelDir: tinyModelDir(),
    engine: 'tfjs',
    backend: 'wasm',
    workers: 'auto',
    cores: 3,
    logger,
  });
  t.teardown(() => pool.stop());
  t.is(pool.size, 2);
  t.is(pool.backend, 'tfjs/wasm');
  await waitUntil(() => lines.some((l) => l.event === 'ANALYSIS-5001'), 'the pool-ready line');
  t.like(
    lines.find((l) => l.event === 'ANALYSIS-5015'),
    { engine: 'tfjs', device: 'wasm' },
  );
  t.like(
    lines.find((l) => l.event === 'ANALYSIS-5001'),
    { engine: 'tfjs', device: 'wasm', workers: 2 },
  );
});

test('ONNX Runtime on WebGPU: one worker even when more are configured (one Dawn device per process)', async (t) => {
  const pool = await InferencePool.start({
    modelDir: tinyModelDir(),
    engine: 'onnxruntime',
    backend: 'wasm',
    onnxruntime: { executionProviders: ['webgpu'], intraOpThreads: 'auto' },
    allowSoftwareGpu: true,
    workers: 2,
    cores: 2,
    logger: quiet,
  });
  t.teardown(() => pool.stop());
  t.is(pool.backend, 'onnxruntime/webgpu');
  t.is(pool.size, 1);
  const { files } = await images(2);
  t.true(written(await pool.process(request(files))));
});
