// References computed by other means: tf.grad on the cpu backend (tf.grad of a convolution is not
// available on wasm) and PyTorch's gradient x input from the fixture.
import test from 'ava';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../../src/inference/backend.js';
import type { DenseNet } from '../../src/inference/densenet.js';
import { DenseNetLrp } from '../../src/lrp/densenet-lrp.js';
import {
  TINY_CLASSES as CLASSES,
  TINY_NORMALISATION as NORMALISATION,
  fixtureTensor,
  maxAbs,
  maxAbsDiff,
  nchwToNhwc,
  tinyInput as input,
  tinyNetwork as network,
} from '../helpers/tiny-densenet.js';

/** Gradient x input of each image's predicted logit, summed over channels, with tf.grad on the cpu backend. */
async function gradientTimesInput(net: DenseNet, x: tf.Tensor4D): Promise<Float32Array> {
  const logits = net.logits(x);
  const targets = tf.oneHot(tf.argMax(logits, 1), 3);
  const grad = tf.grad((inp: tf.Tensor) => tf.sum(tf.mul(net.logits(inp as tf.Tensor4D), targets)))(x);
  const gxi = tf.sum(tf.mul(grad, x), 3);
  const data = (await gxi.data()) as Float32Array;
  tf.dispose([logits, targets, grad, gxi]);
  return data;
}

test.before(async () => {
  await selectBackend('cpu');
});

for (const file of ['tiny-biasfree.safetensors', 'tiny.safetensors'] as const) {
  test.serial(`LRP-0 equals gradient x input (${file})`, async (t) => {
    const net = network(file);
    const x = input();
    const lrp = new DenseNetLrp(net, CLASSES, NORMALISATION, { composite: 'epsilon', epsilon: 1e-9 });
    const explanations = await lrp.explain(x);
    const ours = new Float32Array(explanations.flatMap((e) => Array.from(e[0]?.relevance ?? [])));
    const reference = await gradientTimesInput(net, x);
    const error = maxAbsDiff(ours, reference) / maxAbs(reference);
    t.log(`max |LRP-0 - grad x input| / max |grad x input| = ${error.toExponential(2)}`);
    t.true(error < 1e-4);
    lrp.dispose();
    net.dispose();
    x.dispose();
  });
}

test.serial('LRP-0 on the bias-free model also matches PyTorch gradient x input from the fixture', async (t) => {
  const net = network('tiny-biasfree.safetensors');
  const x = input();
  const lrp = new DenseNetLrp(net, CLASSES, NORMALISATION, { composite: 'epsilon', epsilon: 1e-9 });
  const explanations = await lrp.explain(x);
  const torch = fixtureTensor('tiny-io.safetensors', 'biasfree_grad_x_input');
  const nhwc = nchwToNhwc(torch);
  const [n, h, w, c] = nhwc.shape;
  const summed = new Float32Array(n * h * w);
  for (let i = 0; i < n * h * w; i += 1)
    for (let k = 0; k < c; k += 1) summed[i] = (summed[i] ?? 0) + (nhwc.data[i * c + k] ?? 0);
  const ours = new Float32Array(explanations.flatMap((e) => Array.from(e[0]?.relevance ?? [])));
  t.true(maxAbsDiff(ours, summed) / maxAbs(summed) < 1e-4);
  lrp.dispose();
  net.dispose();
  x.dispose();
});

test.serial('with biases, the absorbed share is exactly what the biases contribute (f(x) - x . grad f)', async (t) => {
  const net = network('tiny.safetensors');
  const x = input();
  const lrp = new DenseNetLrp(net, CLASSES, NORMALISATION, { composite: 'epsilon', epsilon: 1e-9 });
  const explanations = await lrp.explain(x);
  const gxi = await gradientTimesInput(net, x);
  const half = gxi.length / 2;
  explanations.forEach(([e], i) => {
    if (!e) return t.fail();
    // A ReLU network is piecewise linear: f(x) = x . grad f + (what the biases add), so the bias share is
    // f(x) minus the gradient x input total, computed here without LRP.
    const biasShare = e.logit - gxi.subarray(i * half, (i + 1) * half).reduce((a, b) => a + b, 0);
    t.log(`image ${i}: absorbed ${(e.absorbedShare * e.logit).toFixed(5)}, bias contribution ${biasShare.toFixed(5)}`);
    t.true(Math.abs(e.absorbedShare * e.logit - biasShare) < 1e-4 * Math.max(1, Math.abs(e.logit)));
    t.true(Math.abs(biasShare) > 1e-3, 'the model really has biases to absorb');
  });
  lrp.dispose();
  net.dispose();
  x.dispose();
});
