import test from 'ava';
import * as tf from '@tensorflow/tfjs';
import { selectBackend, type BackendCandidate } from '../../src/inference/backend.js';

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
  await t.throwsAsync(selectBackend('tensorflow', [failing('tensorflow', 'not installed'), { name: 'cpu', tfName: 'cpu', register: async () => undefined }]), {
    message: /inference\.backend 'tensorflow' could not be started: tensorflow: not installed/,
  });
});

test('on this machine auto picks a real backend (wasm where the native ones are absent)', async (t) => {
  const selection = await selectBackend('auto');
  t.log(`selected ${selection.name}; skipped: ${selection.skipped.map((s) => `${s.name} (${s.reason})`).join(', ')}`);
  t.true(['tensorflow-gpu', 'tensorflow', 'wasm'].includes(selection.name));
});
