// Specification of the config keys that choose the inference engine: inference.engine and inference.onnxruntime.
import test from 'ava';
import { parseConfigTextWithNotices } from '../../src/config/load-config.js';

const parse = (yaml: string) => parseConfigTextWithNotices(yaml, 'site.yaml').config.inference;

test('by default the engine is chosen automatically, over every execution provider, with a thread per core', (t) => {
  const inference = parse('inference:\n  maxBatch: 4\n');
  t.is(inference.engine, 'auto');
  t.deepEqual(inference.onnxruntime, { executionProviders: ['cuda', 'webgpu', 'cpu'], intraOpThreads: 'auto' });
  t.is(inference.backend, 'auto', 'the TF.js backend keeps its own key');
});

test('an engine, a subset of providers in order and a thread count are taken as written', (t) => {
  const inference = parse(
    'inference:\n  engine: onnxruntime\n  onnxruntime:\n    executionProviders: [webgpu, cpu]\n    intraOpThreads: 2\n',
  );
  t.is(inference.engine, 'onnxruntime');
  t.deepEqual(inference.onnxruntime, { executionProviders: ['webgpu', 'cpu'], intraOpThreads: 2 });
  t.is(parse('inference:\n  engine: tfjs\n').engine, 'tfjs');
  t.deepEqual(parse('inference:\n  onnxruntime:\n    executionProviders: [cuda]\n').onnxruntime.executionProviders, [
    'cuda',
  ]);
});

const refused: Array<[string, string, RegExp]> = [
  ['an unknown engine', 'inference:\n  engine: pytorch\n', /inference\.engine/],
  [
    'an unknown provider',
    'inference:\n  onnxruntime:\n    executionProviders: [tensorrt]\n',
    /inference\.onnxruntime\.executionProviders/,
  ],
  [
    'a provider twice',
    'inference:\n  onnxruntime:\n    executionProviders: [cpu, cpu]\n',
    /at most once, in the order cuda, webgpu, cpu/,
  ],
  [
    'providers out of order',
    'inference:\n  onnxruntime:\n    executionProviders: [cpu, cuda]\n',
    /at most once, in the order cuda, webgpu, cpu/,
  ],
  ['no provider', 'inference:\n  onnxruntime:\n    executionProviders: []\n', /executionProviders/],
  ['zero threads', 'inference:\n  onnxruntime:\n    intraOpThreads: 0\n', /intraOpThreads/],
  ['an unknown key', 'inference:\n  onnxruntime:\n    threads: 2\n', /threads/],
];
for (const [what, yaml, message] of refused) {
  test(`the config refuses ${what}`, (t) => {
    t.throws(() => parse(yaml), { message });
  });
}
