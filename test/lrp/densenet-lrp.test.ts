import test from 'ava';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../../src/inference/backend.js';
import { DenseNetLrp } from '../../src/lrp/densenet-lrp.js';
import { DenseNet } from '../../src/inference/densenet.js';
import { checkDenseNetWeights } from '../../src/inference/weight-import.js';
import {
  TINY_ARCHITECTURE,
  TINY_CLASSES as CLASSES,
  TINY_NORMALISATION as NORMALISATION,
  fixture,
  maxAbs,
  maxAbsDiff,
  tinyInput as input,
  tinyNetwork as network,
} from '../helpers/tiny-densenet.js';

test.before(async () => {
  await selectBackend('wasm');
});

test.serial('conservation: with epsilon on the bias-free model, input relevance sums to the logit', async (t) => {
  const net = network('tiny-biasfree.safetensors');
  const x = input();
  const lrp = new DenseNetLrp(net, CLASSES, NORMALISATION, { composite: 'epsilon', epsilon: 1e-6 });
  for (const [e] of await lrp.explain(x)) {
    if (!e) return t.fail();
    const error = Math.abs(e.relevanceSum - e.logit) / Math.abs(e.logit);
    t.log(`logit ${e.logit.toFixed(5)}, relevance sum ${e.relevanceSum.toFixed(5)}, error ${error.toExponential(2)}`);
    t.true(error <= 1e-3);
  }
  lrp.dispose();
  net.dispose();
  x.dispose();
});

/**
 * The bias-free fixture with the BatchNorm scale of every third channel negated (before norm1 of every dense
 * layer, the transitions' and norm5), so that alpha-beta must swap w+ and w- for part of each block's relevance.
 */
function biasFreeWithNegativeScales(): DenseNet {
  const weights = fixture('tiny-biasfree.safetensors');
  for (const [name, entry] of weights) {
    if (!/(norm1|transition\d\.norm|norm5)\.weight$/.test(name)) continue;
    const data = Float32Array.from(entry.data, (v, i) => (i % 3 === 1 ? -v : v));
    weights.set(name, { ...entry, data });
  }
  return DenseNet.fromHostWeights(
    TINY_ARCHITECTURE,
    checkDenseNetWeights(weights, TINY_ARCHITECTURE, 'tiny-biasfree.safetensors (negated scales)'),
  );
}

// isnet mixes rules: z^B at the pixels, alpha-beta in blocks 1-2 and their transitions, epsilon after. Without
// biases each of them keeps the relevance sum (epsilon up to its stabiliser), so the map sums to the logit;
// relevance sent to the wrong channels or counted twice where the rules meet breaks that. Alpha-beta (1, 0):
// with (2, 1), an output whose inputs all push the same way has no negative part to take its beta share, and
// the sum grows (by 0.4% here, 2% with the negated scales), as in every alpha-beta implementation.
for (const variant of ['bias-free', 'bias-free with negative BatchNorm scales'] as const) {
  test.serial(
    `conservation: isnet (alpha 1, beta 0) on the ${variant} model, input relevance sums to the logit`,
    async (t) => {
      const net = variant === 'bias-free' ? network('tiny-biasfree.safetensors') : biasFreeWithNegativeScales();
      const x = input();
      const lrp = new DenseNetLrp(net, CLASSES, NORMALISATION, {
        composite: 'isnet',
        epsilon: 1e-6,
        alpha: 1,
        beta: 0,
      });
      for (const perImage of await lrp.explain(x, 'all')) {
        for (const e of perImage) {
          const error = Math.abs(e.relevanceSum - e.logit) / Math.abs(e.logit);
          t.log(
            `${e.targetClass}: logit ${e.logit.toFixed(5)}, relevance sum ${e.relevanceSum.toFixed(5)}, error ${error.toExponential(2)}`,
          );
          t.true(error <= 1e-3);
        }
      }
      lrp.dispose();
      net.dispose();
      x.dispose();
    },
  );
}

test.serial('every composite explains every class and reports what it absorbed', async (t) => {
  const net = network('tiny.safetensors');
  const x = input();
  for (const composite of ['isnet', 'epsilon', 'epsilon-plus-flat', 'epsilon-gamma-box'] as const) {
    const lrp = new DenseNetLrp(net, CLASSES, NORMALISATION, { composite });
    const result = await lrp.explain(x, 'all');
    t.is(result.length, 2);
    for (const perImage of result) {
      t.deepEqual(
        perImage.map((e) => e.targetClass),
        CLASSES,
      );
      for (const e of perImage) {
        t.is(e.relevance.length, 64 * 64);
        t.true(Number.isFinite(e.relevanceSum), `${composite} ${e.targetClass}`);
        t.true(Math.abs(e.absorbedShare - (e.logit - e.relevanceSum) / e.logit) < 1e-9);
      }
      t.log(
        `${composite}: ${perImage.map((e) => `${e.targetClass} logit ${e.logit.toFixed(3)} sum ${e.relevanceSum.toFixed(3)}`).join('; ')}`,
      );
    }
    lrp.dispose();
  }
  net.dispose();
  x.dispose();
});

test.serial('an image alone and inside a batch of 8 gets the same map', async (t) => {
  const net = network('tiny.safetensors');
  const x = input();
  const lrp = new DenseNetLrp(net, CLASSES, NORMALISATION);
  const [alone] = await lrp.explain(tf.slice(x, [1, 0, 0, 0], [1, 64, 64, 3]));
  const batch = tf.concat([x, x, x, x]);
  const together = await lrp.explain(batch);
  t.is(together.length, 8);
  const a = alone?.[0]?.relevance ?? new Float32Array();
  const b = together[5]?.[0]?.relevance ?? new Float32Array();
  t.true(maxAbsDiff(a, b) <= 1e-5 * maxAbs(a));
  tf.dispose([batch]);
  lrp.dispose();
  net.dispose();
  x.dispose();
});

test.serial('no tensor leaks over 100 explanations', async (t) => {
  const net = network('tiny.safetensors');
  const x = input();
  const lrp = new DenseNetLrp(net, CLASSES, NORMALISATION);
  await lrp.explain(x);
  const before = tf.memory().numTensors + 1; // + the slice below
  const one = tf.slice(x, [0, 0, 0, 0], [1, 64, 64, 3]) as tf.Tensor4D;
  for (let i = 0; i < 100; i += 1) await lrp.explain(one, i % 10 === 0 ? 'all' : 'predicted');
  t.is(tf.memory().numTensors, before);
  one.dispose();
  lrp.dispose();
  net.dispose();
  x.dispose();
});

test.serial('an unknown target class is refused with the classes the model has', async (t) => {
  const net = network('tiny.safetensors');
  const x = input();
  const lrp = new DenseNetLrp(net, CLASSES, NORMALISATION);
  await t.throwsAsync(lrp.explain(x, 'tuberculosis'), {
    message: /cannot explain class 'tuberculosis': the model's classes are COVID-19, pneumonia, normal/,
  });
  t.is((await lrp.explain(x, 'pneumonia'))[0]?.[0]?.targetClass, 'pneumonia');
  t.is((await lrp.explain(x, 2))[0]?.[0]?.targetClass, 'normal');
  lrp.dispose();
  net.dispose();
  x.dispose();
});

test.serial('wasm and cpu backends give the same map within 1e-4 relative', async (t) => {
  const maps: Float32Array[] = [];
  for (const backend of ['wasm', 'cpu'] as const) {
    await selectBackend(backend);
    const net = network('tiny.safetensors');
    const x = input();
    const lrp = new DenseNetLrp(net, CLASSES, NORMALISATION);
    maps.push(new Float32Array((await lrp.explain(x)).flatMap((e) => Array.from(e[0]?.relevance ?? []))));
    lrp.dispose();
    net.dispose();
    x.dispose();
  }
  await selectBackend('wasm');
  const [wasm, cpu] = maps as [Float32Array, Float32Array];
  const error = maxAbsDiff(wasm, cpu) / maxAbs(cpu);
  t.log(`max difference / max |R| = ${error.toExponential(2)}`);
  t.true(error <= 1e-4);
});

test.serial(
  'an explanation carries every class logit of its image, as the model computes them, so classifying needs no second pass',
  async (t) => {
    const net = network('tiny.safetensors');
    const x = input();
    const lrp = new DenseNetLrp(net, CLASSES, NORMALISATION);
    const explained = await lrp.explain(x);
    const modelLogits = net.logits(x);
    const expected = (await modelLogits.array()) as number[][];
    explained.forEach(([e], i) => {
      const row = expected[i] ?? [];
      if (!e) return t.fail();
      t.is(e.logits.length, CLASSES.length);
      t.true(
        Math.max(...e.logits.map((v, k) => Math.abs(v - (row[k] ?? Number.NaN)))) < 1e-5,
        `image ${i}: ${e.logits.join(', ')} vs ${row.join(', ')}`,
      );
      // 'predicted' explains the class the logits rank first.
      t.is(e.targetIndex, e.logits.indexOf(Math.max(...e.logits)));
    });
    lrp.dispose();
    net.dispose();
    tf.dispose([x, modelLogits]);
  },
);

test.serial(
  'a map with a non-finite value is an error (LRP_NOT_FINITE), never returned, and frees its tensors',
  async (t) => {
    const net = network('tiny.safetensors');
    const x = input();
    const lrp = new DenseNetLrp(net, CLASSES, NORMALISATION);
    await lrp.explain(x);
    const before = tf.memory().numTensors;
    for (const bad of [Number.NaN, Number.POSITIVE_INFINITY]) {
      // One pixel of the second image: its map goes non-finite, the first image's does not.
      const data = x.dataSync().slice();
      data[64 * 64 * 3 + 1000] = bad;
      const broken = tf.tensor4d(data, x.shape);
      const error = await t.throwsAsync(lrp.explain(broken));
      t.is((error as { code?: string }).code, 'LRP_NOT_FINITE');
      t.regex(
        error?.message ?? '',
        /the isnet explanation \(epsilon 0\.01\) of class \S+ for image 1 of the batch: \d+ of 4096 relevance values are not finite/,
      );
      broken.dispose();
    }
    t.is(tf.memory().numTensors, before);
    lrp.dispose();
    net.dispose();
    x.dispose();
  },
);
