// LRP-0 (the epsilon composite with epsilon 0, which the configuration accepts) on a full-size DenseNet-121
// with random weights and random BatchNorm statistics, so that some channels die: norm5's ReLU is 0 over the
// whole image and the pooled feature is exactly 0, as in trained networks. Each epsilon step then divides 0 by 0
// unless its stabiliser is kept off zero. Before the stabiliser was floored, this network's map was NaN at all
// 4096 pixels (388 of its 1024 pooled features are exactly 0); it now equals gradient x input.
import test from 'ava';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../../src/inference/backend.js';
import { DenseNet } from '../../src/inference/densenet.js';
import { namedDenseNet, type DenseNetArchitecture } from '../../src/inference/densenet-architecture.js';
import { checkDenseNetWeights, type HostTensor } from '../../src/inference/weight-import.js';
import { DenseNetLrp } from '../../src/lrp/densenet-lrp.js';
import { kaimingDenseNetWeights } from '../../src/training/kaiming-init.js';
import { SeededRandom } from '../../src/training/random.js';
import { maxAbs, maxAbsDiff, TINY_CLASSES as CLASSES, TINY_NORMALISATION } from '../helpers/tiny-densenet.js';

const SIZE = 64;

/** Kaiming weights with every BatchNorm given random statistics (scale, shift, mean, variance). */
function randomBatchNormDenseNet121(seed: number): { arch: DenseNetArchitecture; weights: Map<string, HostTensor> } {
  const arch = namedDenseNet('densenet121', CLASSES.length);
  const random = new SeededRandom(seed);
  const weights = kaimingDenseNetWeights(arch, random);
  for (const [name, t] of weights) {
    if (!name.includes('norm')) continue;
    const fill = (f: () => number) => ({ shape: t.shape, data: Float32Array.from(t.data, f) });
    if (name.endsWith('.weight'))
      weights.set(
        name,
        fill(() => random.uniform(0.5, 1.5)),
      );
    // Shifts down to -1 standard deviation: channels that no input of this image switches on.
    else if (name.endsWith('.bias'))
      weights.set(
        name,
        fill(() => random.uniform(-1, 0.5)),
      );
    else if (name.endsWith('.running_mean'))
      weights.set(
        name,
        fill(() => random.normal() * 0.5),
      );
    else if (name.endsWith('.running_var'))
      weights.set(
        name,
        fill(() => random.uniform(0.5, 2)),
      );
  }
  return { arch, weights };
}

test.before(async () => {
  // tf.grad of a convolution needs the cpu backend (the wasm backend has no Conv2DBackpropInput).
  await selectBackend('cpu');
});

test.serial(
  'LRP-0 on a full-size DenseNet-121 with dead channels equals gradient x input and has no NaN',
  async (t) => {
    const { arch, weights } = randomBatchNormDenseNet121(121);
    const net = DenseNet.fromHostWeights(arch, checkDenseNetWeights(weights, arch, 'random DenseNet-121'));
    const random = new SeededRandom(7);
    const x = tf.tensor4d(
      Float32Array.from({ length: SIZE * SIZE * 3 }, () => random.uniform(-2, 2.5)),
      [1, SIZE, SIZE, 3],
    );

    // The pooled features the classifier sees (features() ends with norm5), to show that channels really died.
    const features = tf.tidy(() => tf.mean(tf.relu(net.features(x)), [1, 2]));
    const pooled = await features.data();
    const dead = pooled.filter((v) => v === 0).length;
    t.log(`${dead} of ${pooled.length} pooled features are exactly 0`);
    t.true(dead > 0, 'the network has dead channels');

    const lrp = new DenseNetLrp(net, CLASSES, TINY_NORMALISATION, { composite: 'epsilon', epsilon: 0 });
    const [explanation] = (await lrp.explain(x))[0] ?? [];
    if (!explanation) return t.fail();
    const ours = explanation.relevance;
    const nonFinite = ours.filter((v) => !Number.isFinite(v)).length;
    t.is(nonFinite, 0, `${nonFinite} of ${ours.length} relevance values are not finite`);

    const target = tf.oneHot([explanation.targetIndex], CLASSES.length);
    const grad = tf.grad((input: tf.Tensor) => tf.sum(tf.mul(net.logits(input as tf.Tensor4D), target)))(x);
    const gxi = tf.sum(tf.mul(grad, x), 3);
    const reference = (await gxi.data()) as Float32Array;
    const error = maxAbsDiff(ours, reference) / maxAbs(reference);
    t.log(`max |LRP-0 - grad x input| / max |grad x input| = ${error.toExponential(2)}`);
    t.true(error <= 1e-4);
    t.true(maxAbs(reference) > 0);

    tf.dispose([features, target, grad, gxi, x]);
    lrp.dispose();
    net.dispose();
  },
);
