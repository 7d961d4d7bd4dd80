// Specification of src/engines/select-engine.ts: which engine `auto` and an explicit inference.engine give, what
// is logged, and what a failure says. Real engines wherever the case allows (the TF.js one on its cpu backend).
import test from 'ava';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { InferenceEngine } from '../../src/engines/engine.js';
import { createEngine, type EngineChoiceOptions, type EngineFactory } from '../../src/engines/select-engine.js';
import { GatewayError } from '../../src/errors.js';
import { tinyModelDir } from '../helpers/tiny-densenet.js';

function options(overrides: Partial<EngineChoiceOptions> = {}): EngineChoiceOptions {
  return {
    modelDir: tinyModelDir(),
    engine: 'auto',
    tfjsBackend: 'cpu',
    executionProviders: ['cuda', 'webgpu', 'cpu'],
    intraOpThreads: 1,
    allowSoftwareGpu: false,
    lrp: {},
    ...overrides,
  };
}

function recorder() {
  const lines: Array<{ message: string; fields: Record<string, string> }> = [];
  return { lines, log: (message: string, fields: Record<string, string>) => lines.push({ message, fields }) };
}

const failing =
  (reason: string): EngineFactory =>
  async () => {
    throw new GatewayError('ONNX_RUNTIME_UNAVAILABLE', reason);
  };

test.serial('auto picks ONNX Runtime here, on the CPU provider, and logs the choice', async (t) => {
  const { lines, log } = recorder();
  const engine = await createEngine(options({ log }));
  t.teardown(() => engine.dispose());
  t.is(engine.info.engine, 'onnxruntime');
  t.is(engine.info.device, 'cpu');
  t.true(
    engine.info.skipped.some((s) => s.name === 'onnxruntime/cuda'),
    'the CUDA provider is absent here and is passed over with why',
  );
  t.like(lines.at(-1)?.fields, { event: 'ANALYSIS-5015', engine: 'onnxruntime', device: 'cpu' });
});

test.serial('auto falls back to TF.js when ONNX Runtime cannot start, and says why in the log', async (t) => {
  const { lines, log } = recorder();
  const engine = await createEngine(options({ log }), {
    onnxruntime: failing('onnxruntime-node cannot load here (test)'),
  });
  t.teardown(() => engine.dispose());
  t.is(engine.info.engine, 'tfjs');
  t.is(engine.info.device, 'cpu');
  t.deepEqual(engine.info.skipped[0], { name: 'onnxruntime', reason: 'onnxruntime-node cannot load here (test)' });
  t.like(lines[0]?.fields, {
    event: 'ANALYSIS-5016',
    skipped: 'onnxruntime',
    reason: 'onnxruntime-node cannot load here (test)',
  });
  t.like(lines.at(-1)?.fields, { event: 'ANALYSIS-5015', engine: 'tfjs', device: 'cpu', passedOver: 'onnxruntime' });
});

test.serial('auto falls back to TF.js for real when no configured execution provider runs here', async (t) => {
  // CUDA is not installed on this machine: ONNX Runtime fails on its own and TF.js serves.
  const engine = await createEngine(options({ executionProviders: ['cuda'] }));
  t.teardown(() => engine.dispose());
  t.is(engine.info.engine, 'tfjs');
  t.is(engine.info.skipped[0]?.name, 'onnxruntime');
  t.true((engine.info.skipped[0]?.reason ?? '').length > 0);
});

test.serial('tfjs named: ONNX Runtime is never tried', async (t) => {
  let tried = 0;
  const engine = await createEngine(options({ engine: 'tfjs' }), {
    onnxruntime: async () => {
      tried += 1;
      throw new Error('not to be called');
    },
  });
  t.teardown(() => engine.dispose());
  t.is(tried, 0);
  t.is(engine.info.engine, 'tfjs');
  t.deepEqual(engine.info.skipped, []);
});

test.serial('an engine named that cannot start is ENGINE_UNAVAILABLE with its reason; no fallback', async (t) => {
  let tfjsTried = 0;
  const tfjs: EngineFactory = async () => {
    tfjsTried += 1;
    return {} as InferenceEngine;
  };
  const error = await t.throwsAsync(
    createEngine(options({ engine: 'onnxruntime' }), { onnxruntime: failing('no provider ran the model'), tfjs }),
  );
  t.true(error instanceof GatewayError);
  t.is((error as GatewayError).code, 'ENGINE_UNAVAILABLE');
  t.regex(error?.message ?? '', /inference\.engine 'onnxruntime' could not be started: onnxruntime: no provider ran/);
  t.is(tfjsTried, 0);
});

test.serial('auto with no engine that starts is ENGINE_UNAVAILABLE listing every reason', async (t) => {
  const error = await t.throwsAsync(
    createEngine(options({ tfjsBackend: 'tensorflow-gpu' }), { onnxruntime: failing('no onnxruntime here') }),
  );
  t.is((error as GatewayError).code, 'ENGINE_UNAVAILABLE');
  t.regex(error?.message ?? '', /no inference engine could be started \(onnxruntime: no onnxruntime here; tfjs: /);
});

test.serial('a broken model folder stops the choice with its own error, not a list of engines', async (t) => {
  const dir = tinyModelDir();
  const manifestFile = path.join(dir, 'manifest.json');
  const manifest = JSON.parse(readFileSync(manifestFile, 'utf8')) as { weights: { sha256: string } };
  manifest.weights.sha256 = createHash('sha256').update('something else').digest('hex');
  writeFileSync(manifestFile, JSON.stringify(manifest));
  const error = await t.throwsAsync(createEngine(options({ modelDir: dir })));
  t.is((error as GatewayError).code, 'WEIGHTS_CHECKSUM');
});

test.serial('TF.js backends passed over keep their own log code, ANALYSIS-5002, with the reason', async (t) => {
  const { lines, log } = recorder();
  const engine = await createEngine(options({ engine: 'tfjs', tfjsBackend: 'auto', log }));
  t.teardown(() => engine.dispose());
  t.is(engine.info.skipped[0]?.name, 'tfjs/tensorflow-gpu', '@tensorflow/tfjs-node-gpu is not installed here');
  t.like(lines[0]?.fields, { event: 'ANALYSIS-5002', backend: 'tensorflow-gpu' });
  t.true((lines[0]?.fields.reason ?? '').length > 0);
  t.like(lines.at(-1)?.fields, { event: 'ANALYSIS-5015', engine: 'tfjs', device: engine.info.device });
});
