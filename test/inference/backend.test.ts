import test from 'ava';
import * as tf from '@tensorflow/tfjs';
import { selectBackend, type BackendCandidate } from '../../src/inference/backend.js';
import { createWebGpuCandidate } from '../../src/inference/webgpu-candidate.js';
import type { DawnModule } from '../../src/inference/webgpu-dawn.js';

const failing = (name: BackendCandidate['name'], message: string): BackendCandidate => ({
  name,
  tfName: name,
  register: () => Promise.reject(new Error(message)),
});

test('auto falls through candidates that cannot load, and says why each was skipped', async (t) => {
  const selection = await selectBackend('auto', [
    failing('tensorflow-gpu', "Cannot find module '@tensorflow/tfjs-node-gpu'"),
    failing('tensorflow', 'libtensorflow.so.2: cannot open shared object file'),
    { name: 'cpu', tfName: 'cpu', register: async () => undefined },
  ]);
  t.is(selection.name, 'cpu');
  t.deepEqual(
    selection.skipped.map((s) => s.name),
    ['tensorflow-gpu', 'tensorflow'],
  );
  t.regex(selection.skipped[1]?.reason ?? '', /libtensorflow/);
});

test('a backend whose setBackend answers false is not taken, even though tfjs would run on another', async (t) => {
  const selection = await selectBackend('auto', [
    {
      name: 'wasm',
      tfName: 'broken-for-test',
      // Registered, but its factory fails: tfjs then answers setBackend with false rather than throwing.
      register: async () => {
        tf.registerBackend('broken-for-test', () => Promise.reject(new Error('no WebAssembly here')));
      },
    },
    { name: 'cpu', tfName: 'cpu', register: async () => undefined },
  ]);
  t.is(selection.name, 'cpu');
  t.regex(selection.skipped[0]?.reason ?? '', /setBackend\('broken-for-test'\) returned false/);
});

test('a forced backend that cannot start is an error naming it, not a silent fallback', async (t) => {
  await t.throwsAsync(
    selectBackend('tensorflow', [
      failing('tensorflow', 'not installed'),
      { name: 'cpu', tfName: 'cpu', register: async () => undefined },
    ]),
    {
      message: /inference\.backend 'tensorflow' could not be started: tensorflow: not installed/,
    },
  );
});

const cpu: BackendCandidate = { name: 'cpu', tfName: 'cpu', register: async () => undefined };

/** Dawn as seen through the `webgpu` package, with one adapter that says what it is. */
function fakeDawn(info: Record<string, unknown>): () => Promise<DawnModule> {
  return async () => ({ create: () => ({ requestAdapter: async () => ({ info }) }), globals: {} });
}

const LAVAPIPE = {
  vendor: 'mesa',
  architecture: 'software',
  device: 'llvmpipe-llvm-15-0-6-256-bits-',
  description: 'llvmpipe: Mesa 25.0.7',
  isFallbackAdapter: true,
};

/** A webgpu candidate on a fake Dawn whose tfjs backend registers but cannot initialise. */
function fakeWebGpu(info: Record<string, unknown>, tfName: string, registered: string[]): BackendCandidate {
  return createWebGpuCandidate({
    loadDawn: fakeDawn(info),
    tfName,
    registerTfjs: async () => {
      registered.push(tfName);
      tf.registerBackend(tfName, () => Promise.reject(new Error('no GPU device for this test')));
    },
  });
}

test.serial('webgpu refuses a software adapter in auto, logs why, and the next backend runs', async (t) => {
  const logged: Array<[string, Record<string, string>]> = [];
  const registered: string[] = [];
  const selection = await selectBackend('auto', {
    candidates: [fakeWebGpu(LAVAPIPE, 'fake-webgpu-refused', registered), cpu],
    log: (message, fields) => logged.push([message, fields]),
  });
  t.is(selection.name, 'cpu');
  t.regex(
    selection.skipped[0]?.reason ?? '',
    /software adapter \(mesa \/ software \/ llvmpipe.*inference\.allowSoftwareGpu: true/,
  );
  t.deepEqual(registered, [], 'the tfjs webgpu backend is not even imported for a refused adapter');
  t.deepEqual(
    logged.map(([message, fields]) => `${message}: ${fields['backend'] ?? '?'}`),
    ['inference backend skipped: webgpu', 'inference backend selected: cpu'],
  );
});

test.serial(
  'webgpu forced onto a software adapter gets past the check; a failed setBackend then falls through, logged',
  async (t) => {
    const logged: Array<[string, Record<string, string>]> = [];
    const registered: string[] = [];
    const selection = await selectBackend('auto', {
      candidates: [fakeWebGpu(LAVAPIPE, 'fake-webgpu-forced', registered), cpu],
      allowSoftwareGpu: true,
      log: (message, fields) => logged.push([message, fields]),
    });
    t.deepEqual(registered, ['fake-webgpu-forced']);
    t.is(selection.name, 'cpu');
    t.regex(selection.skipped[0]?.reason ?? '', /setBackend\('fake-webgpu-forced'\) returned false/);
    t.is(logged[0]?.[0], 'inference backend skipped');
    t.regex(logged[0]?.[1]['reason'] ?? '', /returned false/);
  },
);

test.serial('webgpu with nothing at all: no adapter is a skip with the reason, not a crash', async (t) => {
  const none = createWebGpuCandidate({
    loadDawn: async () => ({ create: () => ({ requestAdapter: async () => null }), globals: {} }),
    tfName: 'fake-webgpu-none',
    registerTfjs: async () => t.fail('must not get this far'),
  });
  const selection = await selectBackend('auto', [none, cpu]);
  t.is(selection.name, 'cpu');
  t.regex(selection.skipped[0]?.reason ?? '', /Dawn found no WebGPU adapter/);
});

test.serial('webgpu named in the config but refused is an error naming the adapter', async (t) => {
  await t.throwsAsync(selectBackend('webgpu', [fakeWebGpu(LAVAPIPE, 'fake-webgpu-named', []), cpu]), {
    message: /inference\.backend 'webgpu' could not be started: webgpu: WebGPU found only a software adapter \(mesa/,
  });
});

test.serial(
  'on this machine auto picks a real backend (wasm where the native ones are absent, webgpu only on a GPU)',
  async (t) => {
    const selection = await selectBackend('auto');
    t.log(`selected ${selection.name}; skipped: ${selection.skipped.map((s) => `${s.name} (${s.reason})`).join(', ')}`);
    t.true(['tensorflow-gpu', 'webgpu', 'tensorflow', 'wasm'].includes(selection.name));
    if (selection.name === 'webgpu') t.is(selection.details['software'], 'false');
  },
);
