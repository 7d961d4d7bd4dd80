import test from 'ava';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../../src/inference/backend.js';
import { ConvAdjoint, ConvRelevance, dilate, flipTranspose } from '../../src/lrp/conv-relevance.js';
import {
  averagePoolRelevance,
  maxPoolRelevance,
  maxPoolRelevanceAsTensors,
  maxPoolRelevanceOnHost,
} from '../../src/lrp/layer-relevance.js';

test.before(async () => {
  await selectBackend('cpu');
});

/** The stem's max pool input: ReLU outputs with one row and column of zeros around them. */
const padByOne = (x: tf.Tensor) =>
  tf.pad(x, [
    [0, 0],
    [1, 1],
    [1, 1],
    [0, 0],
  ]) as tf.Tensor4D;

const sum = async (x: tf.Tensor) => {
  const s = tf.sum(x);
  const v = (await s.data())[0] ?? Number.NaN;
  s.dispose();
  return v;
};

for (const geometry of [
  { kernel: 3, stride: 1, padding: 'same' as const, size: 9 },
  { kernel: 1, stride: 1, padding: 'valid' as const, size: 9 },
  { kernel: 7, stride: 2, padding: 'valid' as const, size: 22 },
  { kernel: 7, stride: 2, padding: 'valid' as const, size: 23 },
  { kernel: 3, stride: 2, padding: 'valid' as const, size: 10 },
  { kernel: 2, stride: 2, padding: 'valid' as const, size: 8 },
  { kernel: 5, stride: 3, padding: 'valid' as const, size: 17 },
]) {
  test(`the forward-convolution adjoint equals tf.grad's for a ${geometry.kernel}x${geometry.kernel}/${geometry.stride} convolution on a ${geometry.size}x${geometry.size} input`, async (t) => {
    const x = tf.randomNormal([2, geometry.size, geometry.size, 3], 0, 1, 'float32', 1) as tf.Tensor4D;
    const w = tf.randomNormal([geometry.kernel, geometry.kernel, 3, 5], 0, 1, 'float32', 2) as tf.Tensor4D;
    const y = tf.conv2d(x, w, geometry.stride, geometry.padding);
    const r = tf.randomNormal(y.shape, 0, 1, 'float32', 3) as tf.Tensor4D;
    // LRP-0 of a bias-free conv is x * (adjoint of s) with s = r / z; compare with x * grad of sum(z * s).
    const rule = new ConvRelevance(w, undefined, geometry, { kind: 'epsilon' }, 0);
    const ours = rule.backward(x, r, y);
    const s = tf.div(r, y);
    const grad = tf.grad((input: tf.Tensor) =>
      tf.sum(tf.mul(tf.conv2d(input as tf.Tensor4D, w, geometry.stride, geometry.padding), s)),
    )(x);
    const expected = tf.mul(x, grad);
    const diff = await sum(tf.abs(tf.sub(ours, expected)));
    t.true(diff / (await sum(tf.abs(expected))) < 1e-5);
    rule.dispose();
    tf.dispose([x, w, y, r, ours, s, grad, expected]);
  });
}

test('alpha-beta (2, 1) keeps the relevance sum through a bias-free layer', async (t) => {
  const x = tf.relu(tf.randomNormal([1, 12, 12, 8], 0, 1, 'float32', 4)) as tf.Tensor4D;
  const w = tf.randomNormal([3, 3, 8, 6], 0, 1, 'float32', 5) as tf.Tensor4D;
  const z = tf.conv2d(x, w, 1, 'same');
  const r = tf.randomUniform(z.shape, 0, 1, 'float32', 6) as tf.Tensor4D;
  const rule = new ConvRelevance(
    w,
    undefined,
    { kernel: 3, stride: 1, padding: 'same' },
    { kind: 'alpha-beta', alpha: 2, beta: 1 },
    0,
  );
  const rx = rule.backward(x, r, z);
  const inSum = await sum(rx);
  const outSum = await sum(r);
  t.log(`sum R_out ${outSum.toFixed(5)}, sum R_in ${inSum.toFixed(5)}`);
  t.true(Math.abs(inSum - outSum) / outSum < 1e-4);
  rule.dispose();
  tf.dispose([x, w, z, r, rx]);
});

test('winner takes all through the max pool: each window passes its relevance to one input, nothing lost', async (t) => {
  const x = padByOne(tf.relu(tf.randomNormal([1, 10, 10, 2], 0, 1, 'float32', 7)));
  const pooled = tf.maxPool(x, 3, 2, 'valid');
  const r = tf.randomUniform(pooled.shape, 0.5, 1, 'float32', 8) as tf.Tensor4D;
  const rx = maxPoolRelevance(x, pooled, r, 3, 2);
  t.true(Math.abs((await sum(rx)) - (await sum(r))) < 1e-4);
  // Relevance only lands on inputs that are a window maximum.
  const winners = tf.grad((input: tf.Tensor) => tf.sum(tf.maxPool(input as tf.Tensor4D, 3, 2, 'valid')))(x);
  t.is(await sum(tf.mul(tf.cast(tf.equal(winners, 0), 'float32'), tf.abs(rx))), 0);
  tf.dispose([x, pooled, r, rx, winners]);
});

test('the average pool keeps the relevance sum (epsilon rule, no bias)', async (t) => {
  const c = tf.randomNormal([1, 9, 9, 4], 0, 1, 'float32', 9) as tf.Tensor4D;
  const pooled = tf.avgPool(c, 2, 2, 'valid');
  const r = tf.randomNormal(pooled.shape, 0, 1, 'float32', 10) as tf.Tensor4D;
  const rc = averagePoolRelevance(c, pooled, r, 1e-9);
  t.true(Math.abs((await sum(rc)) - (await sum(r))) < 1e-3);
  t.is(await sum(tf.abs(tf.slice(rc, [0, 8, 0, 0], [1, 1, 9, 4]))), 0, 'the row the pool dropped gets nothing');
  tf.dispose([c, pooled, r, rc]);
});

test('dilate and flipTranspose have the shapes the adjoint needs', (t) => {
  const s = tf.ones([1, 3, 3, 2]) as tf.Tensor4D;
  t.deepEqual(dilate(s, 2).shape, [1, 5, 5, 2]);
  t.deepEqual(flipTranspose(tf.zeros([7, 7, 3, 64]) as tf.Tensor4D).shape, [7, 7, 64, 3]);
});

test('a strided adjoint needs valid padding: same padding is refused with the reason', (t) => {
  const w = tf.zeros([3, 3, 2, 2]) as tf.Tensor4D;
  const error = t.throws(() => new ConvAdjoint(w, { kernel: 3, stride: 2, padding: 'same' }));
  t.regex(error?.message ?? '', /valid/);
  w.dispose();
});

test('the max pool on the host and as tensor ops give the same relevance, ties included', async (t) => {
  // Quantised values make ties inside windows common; the first maximum in scan order must win in both.
  const x = padByOne(tf.round(tf.mul(tf.relu(tf.randomNormal([2, 13, 13, 3], 0, 1, 'float32', 11)), 2)));
  const pooled = tf.maxPool(x, 3, 2, 'valid');
  const r = tf.randomNormal(pooled.shape, 0, 1, 'float32', 12) as tf.Tensor4D;
  const host = maxPoolRelevanceOnHost(x, pooled, r, 3, 2);
  const tensors = maxPoolRelevanceAsTensors(x, pooled, r, 3, 2);
  // Only rounding of sums where one input wins several windows may differ; a different winner would differ by ~|r|.
  t.true((await sum(tf.abs(tf.sub(host, tensors)))) < 1e-4);
  t.true(Math.abs((await sum(host)) - (await sum(r))) < 1e-4);
  tf.dispose([x, pooled, r, host, tensors]);
});

test('z^B through a strided stem equals its definition, with its denominators from bound images given as a batch of one', async (t) => {
  const size = 15;
  const x = tf.randomUniform([2, size, size, 3], -1, 2, 'float32', 13) as tf.Tensor4D;
  const w = tf.randomNormal([7, 7, 3, 4], 0, 1, 'float32', 14) as tf.Tensor4D;
  const bias = tf.randomNormal([4], 0, 1, 'float32', 15) as tf.Tensor1D;
  const low = tf.fill([1, size, size, 3], -1) as tf.Tensor4D;
  const high = tf.fill([1, size, size, 3], 2) as tf.Tensor4D;
  const z = tf.add(tf.conv2d(x, w, 2, 'valid'), bias) as tf.Tensor4D;
  const r = tf.randomUniform(z.shape, 0, 1, 'float32', 16) as tf.Tensor4D;
  const channelBounds = { low: tf.tensor1d([-1, -1, -1]), high: tf.tensor1d([2, 2, 2]) };
  const rule = new ConvRelevance(
    w,
    bias,
    { kernel: 7, stride: 2, padding: 'valid' },
    { kind: 'z-box' },
    0,
    channelBounds,
  );
  const ours = rule.backward(x, r, z, rule.boxOffset(low, high));
  // Without the offset, the channel bounds at every pixel: the same images here.
  const byDefault = rule.backward(x, r, z);
  // Definition: z^B_j = sum_i x_i w_ij - l_i w+_ij - h_i w-_ij, R_i = sum_j (x_i w_ij - l_i w+_ij - h_i w-_ij) R_j / z^B_j,
  // with each term's adjoint taken by tf.grad on the cpu backend.
  const wp = tf.relu(w) as tf.Tensor4D;
  const wn = tf.neg(tf.relu(tf.neg(w))) as tf.Tensor4D;
  const lowN = tf.tile(low, [2, 1, 1, 1]) as tf.Tensor4D;
  const highN = tf.tile(high, [2, 1, 1, 1]) as tf.Tensor4D;
  const conv = (a: tf.Tensor, f: tf.Tensor4D) => tf.conv2d(a as tf.Tensor4D, f, 2, 'valid');
  const zb = tf.sub(tf.sub(conv(x, w), conv(lowN, wp)), conv(highN, wn));
  const s = tf.div(r, zb);
  const back = (f: tf.Tensor4D, a: tf.Tensor4D) => tf.grad((input: tf.Tensor) => tf.sum(tf.mul(conv(input, f), s)))(a);
  const expected = tf.sub(tf.sub(tf.mul(x, back(w, x)), tf.mul(lowN, back(wp, lowN))), tf.mul(highN, back(wn, highN)));
  const error = (await sum(tf.abs(tf.sub(ours, expected)))) / (await sum(tf.abs(expected)));
  t.log(`relative L1 difference ${error.toExponential(2)}`);
  t.true(error < 1e-4);
  t.true(Math.abs((await sum(ours)) - (await sum(r))) / (await sum(r)) < 1e-3, 'z^B conserves');
  t.true((await sum(tf.abs(tf.sub(byDefault, ours)))) / (await sum(tf.abs(expected))) < 1e-6);
  rule.dispose();
  tf.dispose([
    x,
    w,
    bias,
    low,
    high,
    z,
    r,
    ours,
    byDefault,
    wp,
    wn,
    lowN,
    highN,
    zb,
    s,
    expected,
    channelBounds.low,
    channelBounds.high,
  ]);
});

test('alpha-beta through a BatchNorm fused per consumer: negative scales swap w+ and w-, the scale cancels', async (t) => {
  const x = tf.relu(tf.randomNormal([1, 10, 10, 6], 0, 1, 'float32', 21)) as tf.Tensor4D;
  const w = tf.randomNormal([3, 3, 6, 5], 0, 1, 'float32', 22) as tf.Tensor4D;
  const scale = tf.tensor1d([1.5, -0.7, 0.3, -2, 1]);
  const geometry = { kernel: 3, stride: 1, padding: 'same' as const };
  const rule = { kind: 'alpha-beta' as const, alpha: 2, beta: 1 };
  const r = tf.randomNormal([1, 10, 10, 5], 0, 1, 'float32', 23) as tf.Tensor4D;
  // Reference: the fused convolution (w * scale) as a layer of its own, under the plain rule.
  const fused = tf.mul(w, scale) as tf.Tensor4D;
  const reference = new ConvRelevance(fused, undefined, geometry, rule, 0);
  const expected = reference.backward(x, r, tf.conv2d(x, fused, 1, 'same'));
  // Ours: the unfused convolution, the relevance split by the sign of the scale that carried it.
  const ours = new ConvRelevance(w, undefined, geometry, rule, 0);
  const negativeMask = tf.cast(tf.less(scale, 0), 'float32');
  const negative = tf.mul(r, negativeMask) as tf.Tensor4D;
  const positive = tf.sub(r, negative) as tf.Tensor4D;
  const actual = tf.mul(x, ours.signedSignal(ours.record(x, tf.conv2d(x, w, 1, 'same')), positive, negative, x.shape));
  const error = (await sum(tf.abs(tf.sub(actual, expected)))) / (await sum(tf.abs(expected)));
  t.log(`relative L1 difference ${error.toExponential(2)}`);
  t.true(error < 1e-5);
  reference.dispose();
  ours.dispose();
  tf.dispose([x, w, scale, r, fused, expected, negativeMask, negative, positive, actual]);
});
