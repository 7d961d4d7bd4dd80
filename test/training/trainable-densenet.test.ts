import test from 'ava';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../../src/inference/backend.js';
import { DenseNet } from '../../src/inference/densenet.js';
import { checkDenseNetWeights } from '../../src/inference/weight-import.js';
import { kaimingDenseNetWeights } from '../../src/training/kaiming-init.js';
import { SeededRandom } from '../../src/training/random.js';
import { BN_MOMENTUM, TrainableDenseNet } from '../../src/training/trainable-densenet.js';
import { TINY_ARCHITECTURE, fixture, fixtureTensor, maxAbs, maxAbsDiff, nchwToNhwc } from '../helpers/tiny-densenet.js';

test.before(async () => {
  await selectBackend('wasm');
});

function fixtureInput(): tf.Tensor4D {
  const x = nchwToNhwc(fixtureTensor('tiny-io.safetensors', 'input'));
  return tf.tensor4d(x.data, x.shape);
}

test.serial(
  'in eval mode it computes what the inference DenseNet computes from the same torchvision weights',
  async (t) => {
    const weights = checkDenseNetWeights(fixture('tiny.safetensors'), TINY_ARCHITECTURE, 'tiny');
    const trainable = TrainableDenseNet.fromHostWeights(TINY_ARCHITECTURE, weights);
    const inference = DenseNet.fromHostWeights(TINY_ARCHITECTURE, weights);
    const x = fixtureInput();
    const ours = await trainable.logits(x, { training: false }).data();
    const reference = await inference.logits(x).data();
    const pytorch = fixtureTensor('tiny-io.safetensors', 'logits').data;
    t.log(
      `max |ours - inference| ${maxAbsDiff(ours, reference).toExponential(2)}, |ours - pytorch| ${maxAbsDiff(ours, pytorch).toExponential(2)}`,
    );
    t.true(maxAbsDiff(ours, reference) <= 1e-4 * maxAbs(reference));
    t.true(maxAbsDiff(ours, pytorch) <= 1e-3 * maxAbs(pytorch));
    trainable.dispose();
    inference.dispose();
    x.dispose();
  },
);

test.serial('exports a state_dict that passes the importer and round-trips every value exactly', (t) => {
  const weights = checkDenseNetWeights(fixture('tiny.safetensors'), TINY_ARCHITECTURE, 'tiny');
  const trainable = TrainableDenseNet.fromHostWeights(TINY_ARCHITECTURE, weights);
  const exported = checkDenseNetWeights(trainable.exportHostWeights(), TINY_ARCHITECTURE, 'exported');
  t.is(exported.size, weights.size);
  for (const [name, tensor] of weights) {
    const out = exported.get(name);
    t.deepEqual(out?.shape, tensor.shape, name);
    t.is(maxAbsDiff(out?.data ?? [], tensor.data), 0, name);
  }
  trainable.dispose();
});

test.serial(
  'training mode normalises with batch statistics and moves running statistics with momentum 0.1 (unbiased variance)',
  async (t) => {
    const weights = kaimingDenseNetWeights(TINY_ARCHITECTURE, new SeededRandom(3));
    const net = TrainableDenseNet.fromHostWeights(TINY_ARCHITECTURE, weights);
    const x = fixtureInput();
    // norm0 sees conv0's output; compute its batch statistics on the host side from the same convolution.
    const conv0 = tf.tidy(() => {
      const hwio = tf.transpose(
        tf.tensor(weights.get('features.conv0.weight')?.data ?? new Float32Array(), [16, 3, 7, 7]),
        [2, 3, 1, 0],
      ) as tf.Tensor4D;
      return tf.conv2d(
        tf.pad(x, [
          [0, 0],
          [3, 3],
          [3, 3],
          [0, 0],
        ]),
        hwio,
        2,
        'valid',
      );
    });
    const { mean, variance } = tf.moments(conv0, [0, 1, 2]);
    const count = conv0.size / 16;
    const expectedMean = Array.from(await mean.data(), (m) => BN_MOMENTUM * m);
    const expectedVar = Array.from(
      await variance.data(),
      (v) => 1 - BN_MOMENTUM + BN_MOMENTUM * v * (count / (count - 1)),
    );
    tf.dispose(net.logits(x, { training: true }));
    const after = net.exportHostWeights();
    t.true(maxAbsDiff(after.get('features.norm0.running_mean')?.data ?? [], expectedMean) < 1e-5);
    t.true(maxAbsDiff(after.get('features.norm0.running_var')?.data ?? [], expectedVar) < 1e-4);
    // Batch statistics make the channel means of norm5's output (before ReLU) vanish for a fresh network.
    const f = net.features(x, { training: true });
    const channelMeans = await tf.mean(f, [0, 1, 2]).data();
    t.true(maxAbs(channelMeans) < 1e-4, `norm5 output channel means ${maxAbs(channelMeans)}`);
    tf.dispose([f, conv0, mean, variance, x]);
    net.dispose();
  },
);

test.serial(
  'gradients reach every trainable variable and one Adam step lowers the loss on a fixed batch',
  async (t) => {
    const net = TrainableDenseNet.fromHostWeights(
      TINY_ARCHITECTURE,
      kaimingDenseNetWeights(TINY_ARCHITECTURE, new SeededRandom(5)),
    );
    const x = fixtureInput();
    const labels = tf.oneHot(tf.tensor1d([0, 2], 'int32'), 3);
    const loss = () => tf.losses.softmaxCrossEntropy(labels, net.logits(x, { training: true })) as tf.Scalar;
    const { grads } = tf.variableGrads(loss, net.trainableVariables());
    const names = Object.keys(grads);
    t.is(names.length, net.trainableVariables().length);
    for (const name of names) {
      const g = grads[name];
      if (g === undefined) return t.fail();
      t.true(Number.isFinite((await tf.sum(tf.abs(g)).data())[0] ?? Number.NaN), name);
    }
    tf.dispose(Object.values(grads));
    const optimiser = tf.train.adam(1e-2);
    const before = (await loss().data())[0] ?? 0;
    for (let i = 0; i < 3; i += 1) optimiser.minimize(loss, false, net.trainableVariables());
    const after = (await loss().data())[0] ?? 0;
    t.log(`loss ${before.toFixed(4)} -> ${after.toFixed(4)}`);
    t.true(after < before);
    optimiser.dispose();
    tf.dispose([x, labels]);
    net.dispose();
  },
);

test.serial(
  'whole-network gradients (training-mode BN included) equal those through tfjs kernels on cpu',
  async (t) => {
    await selectBackend('cpu');
    const weights = kaimingDenseNetWeights(TINY_ARCHITECTURE, new SeededRandom(8));
    // A 32 x 32 crop keeps the cpu backend's reference convolutions quick.
    const x = tf.slice(fixtureInput(), [0, 16, 16, 0], [2, 32, 32, 3]) as tf.Tensor4D;
    const labels = tf.oneHot(tf.tensor1d([1, 2], 'int32'), 3);
    const gradients = async (convolution: 'fast-gradients' | 'tfjs-kernels') => {
      const net = TrainableDenseNet.fromHostWeights(TINY_ARCHITECTURE, weights);
      net.convolution = convolution;
      const variables = net.trainableVariables();
      const { grads } = tf.variableGrads(
        () => tf.losses.softmaxCrossEntropy(labels, net.logits(x, { training: true })) as tf.Scalar,
        variables,
      );
      const out = await Promise.all(variables.map((v) => (grads[v.name] as tf.Tensor).data()));
      tf.dispose(Object.values(grads));
      net.dispose();
      return out;
    };
    const ours = await gradients('fast-gradients');
    const reference = await gradients('tfjs-kernels');
    // Relative to each variable's largest gradient, floored at 1e-3 of the largest anywhere: a variable whose
    // gradient is almost zero (norm0's gamma here, ~1e-6) is compared at float32 resolution, not below it.
    const overall = Math.max(...reference.map((r) => maxAbs(r)));
    let worst = 0;
    ours.forEach((g, i) => {
      const r = reference[i] ?? new Float32Array();
      worst = Math.max(worst, maxAbsDiff(g, r) / Math.max(maxAbs(r), 1e-3 * overall));
    });
    t.log(`${ours.length} variables, worst relative difference ${worst.toExponential(2)}`);
    t.true(worst < 1e-4);
    tf.dispose([x, labels]);
    await selectBackend('wasm');
  },
);
