import test from 'ava';
import { existsSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { GatewayError } from '../../src/errors.js';
import { OnnxGraphBuilder } from '../../src/inference/onnx/onnx-graph.js';
import {
  loadOnnxRuntime,
  openOnnxSession,
  openOnnxSessionWith,
  type OnnxRuntimeLoader,
  type OnnxSessionOptions,
} from '../../src/inference/onnx/onnx-session.js';

// Choosing an execution provider with ONNX Runtime itself: the CUDA provider is not installed here (no GPU) and
// WebGPU finds only Mesa's lavapipe, a software adapter (webgpu.test.ts says what that needs; a missing one
// FAILS the WebGPU tests below, CXR_SKIP_WEBGPU=1 skips them on purpose).

const skipWebGpu = process.env['CXR_SKIP_WEBGPU'] === '1';
const webgpuTest = skipWebGpu ? test.serial.skip : test.serial;

/** y = 2x, x of any batch: small enough to open on every provider in a moment. */
function doubling(): Uint8Array {
  const g = new OnnxGraphBuilder('double');
  const x = g.input('x', 'float32', ['N', 4]);
  g.output('y', 'float32', ['N', 4], g.node('Mul', [x, g.scalar(2)]));
  return g.toBytes();
}

/** Every log line, for the assertions. */
function recorder(): {
  lines: Array<{ message: string; fields: Record<string, string> }>;
  log: OnnxSessionOptions['log'];
} {
  const lines: Array<{ message: string; fields: Record<string, string> }> = [];
  return { lines, log: (message, fields) => lines.push({ message, fields }) };
}

const CUDA_SENTENCE =
  'the CUDA provider is not installed (GPU hosts: node node_modules/onnxruntime-node/script/install ' +
  '--onnxruntime-node-install=cuda12)';

test('cuda is skipped with the install sentence where its provider library is absent, and the cpu is used', async (t) => {
  // The real runtime, its binding folder replaced by an empty one: what every host without the CUDA install sees.
  const real = await loadOnnxRuntime();
  const loader: OnnxRuntimeLoader = async () => ({
    ...real,
    bindingDir: mkdtempSync(path.join(os.tmpdir(), 'ort-bin-')),
  });
  const { lines, log } = recorder();
  const { session, selection } = await openOnnxSessionWith(loader, doubling(), {
    executionProviders: ['cuda', 'cpu'],
    allowSoftwareGpu: false,
    log,
  });
  t.is(selection.provider, 'cpu');
  t.is(session.provider, 'cpu');
  t.deepEqual(selection.skipped, [{ name: 'cuda', reason: CUDA_SENTENCE }]);
  t.deepEqual(
    lines.map((l) => l.fields['provider']),
    ['cuda', 'cpu'],
  );
  t.regex(lines[0]?.message ?? '', /execution provider cuda skipped: the CUDA provider is not installed/);
  await session.release();
});

test('on this machine (no CUDA install) the default loader skips cuda with the same sentence', async (t) => {
  const { bindingDir } = await loadOnnxRuntime();
  // The binding folder really is where the install puts the provider: the binding itself lies there.
  t.true(existsSync(path.join(bindingDir, 'onnxruntime_binding.node')), bindingDir);
  if (existsSync(path.join(bindingDir, 'libonnxruntime_providers_cuda.so'))) {
    t.fail('this host has the CUDA provider installed: this test describes a host without it');
    return;
  }
  const { session, selection } = await openOnnxSession(doubling(), {
    executionProviders: ['cuda', 'cpu'],
    allowSoftwareGpu: false,
  });
  t.deepEqual(selection.skipped, [{ name: 'cuda', reason: CUDA_SENTENCE }]);
  await session.release();
});

test('cuda is skipped when this build of onnxruntime-node lists no CUDA provider at all', async (t) => {
  const real = await loadOnnxRuntime();
  const withoutCuda = Object.create(real.ort, {
    listSupportedBackends: { value: () => real.ort.listSupportedBackends().filter((b) => b.name !== 'cuda') },
  }) as typeof real.ort;
  const { session, selection } = await openOnnxSessionWith(async () => ({ ...real, ort: withoutCuda }), doubling(), {
    executionProviders: ['cuda', 'cpu'],
    allowSoftwareGpu: false,
  });
  t.regex(selection.skipped[0]?.reason ?? '', /^this build of onnxruntime-node has no CUDA provider \(linux-/);
  await session.release();
});

test('cpu gives the intra-op threads asked for, and the cores by default', async (t) => {
  const one = await openOnnxSession(doubling(), {
    executionProviders: ['cpu'],
    intraOpThreads: 1,
    allowSoftwareGpu: false,
  });
  t.deepEqual(one.selection, { provider: 'cpu', skipped: [], details: { threads: '1' } });
  const out = await one.session.run({ x: { type: 'float32', data: Float32Array.of(1, 2, 3, 4), dims: [1, 4] } });
  t.deepEqual(Array.from<number | bigint>(out['y']?.data ?? []), [2, 4, 6, 8]);
  await one.session.release();
  const all = await openOnnxSession(doubling(), { executionProviders: ['cpu'], allowSoftwareGpu: false });
  t.is(all.selection.details['threads'], String(os.availableParallelism()));
  await all.session.release();
});

test('a loader that throws gives ONNX_RUNTIME_UNAVAILABLE with the reason', async (t) => {
  const error = await t.throwsAsync(
    openOnnxSessionWith(
      async () => {
        throw new Error("Cannot find package 'onnxruntime-node'");
      },
      doubling(),
      { executionProviders: ['cpu'], allowSoftwareGpu: false },
    ),
    { instanceOf: GatewayError },
  );
  t.is(error?.code, 'ONNX_RUNTIME_UNAVAILABLE');
  t.regex(error?.message ?? '', /onnxruntime-node could not be loaded \(Cannot find package 'onnxruntime-node'\)/);
});

test('model bytes the CPU provider refuses give ONNX_MODEL_REJECTED', async (t) => {
  const error = await t.throwsAsync(
    openOnnxSession(Uint8Array.of(0x08, 0x08, 0xff, 0xff, 0x01), {
      executionProviders: ['cpu'],
      allowSoftwareGpu: false,
    }),
    { instanceOf: GatewayError },
  );
  t.is(error?.code, 'ONNX_MODEL_REJECTED');
  t.regex(error?.message ?? '', /CPU provider refused the graph/);
});

test('a graph with an unknown operator is rejected on cpu too (a builder bug, not a missing provider)', async (t) => {
  const g = new OnnxGraphBuilder('unknown');
  const x = g.input('x', 'float32', [1]);
  g.output('y', 'float32', [1], g.node('NoSuchOperator', [x]));
  const error = await t.throwsAsync(
    openOnnxSession(g.toBytes(), { executionProviders: ['cpu'], allowSoftwareGpu: false }),
    { instanceOf: GatewayError },
  );
  t.is(error?.code, 'ONNX_MODEL_REJECTED');
  t.regex(error?.message ?? '', /NoSuchOperator/);
});

test('an empty provider list and a list with nothing usable give ONNX_PROVIDER_UNAVAILABLE', async (t) => {
  const empty = await t.throwsAsync(openOnnxSession(doubling(), { executionProviders: [], allowSoftwareGpu: false }), {
    instanceOf: GatewayError,
  });
  t.is(empty?.code, 'ONNX_PROVIDER_UNAVAILABLE');
  t.regex(empty?.message ?? '', /executionProviders is empty/);
  const real = await loadOnnxRuntime();
  const noCuda = await t.throwsAsync(
    openOnnxSessionWith(
      async () => ({ ...real, bindingDir: mkdtempSync(path.join(os.tmpdir(), 'ort-bin-')) }),
      doubling(),
      { executionProviders: ['cuda'], allowSoftwareGpu: false },
    ),
    { instanceOf: GatewayError },
  );
  t.is(noCuda?.code, 'ONNX_PROVIDER_UNAVAILABLE');
  t.is(noCuda?.message, `no ONNX Runtime execution provider could run the model: cuda: ${CUDA_SENTENCE}`);
});

test('run passes int64 tensors both ways and refuses an output of another type', async (t) => {
  const g = new OnnxGraphBuilder('types');
  const k = g.input('k', 'int64', ['N']);
  g.output('k2', 'int64', ['N'], g.node('Add', [k, g.int64s([5])]));
  g.output('flag', 'bool', ['N'], g.node('Greater', [k, g.int64s([0])]));
  const { session } = await openOnnxSession(g.toBytes(), { executionProviders: ['cpu'], allowSoftwareGpu: false });
  const feeds = { k: { type: 'int64' as const, data: BigInt64Array.of(-1n, 2n), dims: [2] } };
  await t.throwsAsync(session.run(feeds), { message: /ONNX output flag is bool, not float32 or int64/ });
  await session.release();

  const h = new OnnxGraphBuilder('int64');
  const k1 = h.input('k', 'int64', ['N']);
  h.output('k2', 'int64', ['N'], h.node('Add', [k1, h.int64s([5])]));
  const ints = await openOnnxSession(h.toBytes(), { executionProviders: ['cpu'], allowSoftwareGpu: false });
  const out = await ints.session.run(feeds);
  t.is(out['k2']?.type, 'int64');
  t.deepEqual(Array.from<bigint | number>(out['k2']?.data ?? []), [4n, 7n]);
  await ints.session.release();
});

webgpuTest('webgpu on lavapipe is refused without allowSoftwareGpu and chosen with it', async (t) => {
  const { lines, log } = recorder();
  const refused = await openOnnxSession(doubling(), {
    executionProviders: ['webgpu', 'cpu'],
    allowSoftwareGpu: false,
    log,
  });
  t.is(refused.selection.provider, 'cpu');
  t.is(refused.selection.skipped[0]?.name, 'webgpu');
  t.regex(
    refused.selection.skipped[0]?.reason ?? '',
    /WebGPU found only a software adapter \(.*llvmpipe.*\).*inference\.allowSoftwareGpu: true/,
  );
  t.is(lines[0]?.fields['provider'], 'webgpu');
  await refused.session.release();

  const accepted = await openOnnxSession(doubling(), { executionProviders: ['webgpu', 'cpu'], allowSoftwareGpu: true });
  t.is(accepted.selection.provider, 'webgpu');
  t.is(accepted.session.provider, 'webgpu');
  t.deepEqual(accepted.selection.skipped, []);
  t.is(accepted.selection.details['software'], 'true');
  t.regex(accepted.selection.details['adapter'] ?? '', /llvmpipe/);
  const out = await accepted.session.run({
    x: { type: 'float32', data: Float32Array.of(1, -2, 3, 0.5), dims: [1, 4] },
  });
  t.deepEqual(Array.from<number | bigint>(out['y']?.data ?? []), [2, -4, 6, 1]);
  await accepted.session.release();
});

webgpuTest('a graph the WebGPU provider cannot open is a skip reason there, then rejected on cpu', async (t) => {
  const { lines, log } = recorder();
  const error = await t.throwsAsync(
    openOnnxSession(Uint8Array.of(0x08, 0x08, 0xff, 0xff, 0x01), {
      executionProviders: ['webgpu', 'cpu'],
      allowSoftwareGpu: true,
      log,
    }),
    { instanceOf: GatewayError },
  );
  t.is(error?.code, 'ONNX_MODEL_REJECTED');
  t.is(lines.length, 1);
  t.is(lines[0]?.fields['provider'], 'webgpu');
  t.regex(lines[0]?.fields['reason'] ?? '', /^the WebGPU provider could not run the model \(.+\)$/);
});

test('run after release rejects', async (t) => {
  const { session } = await openOnnxSession(doubling(), { executionProviders: ['cpu'], allowSoftwareGpu: false });
  await session.release();
  await t.throwsAsync(session.run({ x: { type: 'float32', data: new Float32Array(4), dims: [1, 4] } }));
});
