import test from 'ava';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../../src/inference/backend.js';
import { DenseNet } from '../../src/inference/densenet.js';
import { expectedParameters, featureChannels, namedDenseNet } from '../../src/inference/densenet-architecture.js';
import { checkDenseNetWeights } from '../../src/inference/weight-import.js';
import { TINY_ARCHITECTURE, fixture, fixtureTensor, maxAbs, maxAbsDiff, nchwToNhwc } from '../helpers/tiny-densenet.js';

// The reference: torchvision's own DenseNet with random weights AND random BN running statistics, run by
// Debian's PyTorch (tools/make_densenet_fixture.py). Feature maps are compared, not only logits: a random
// DenseNet's logits barely depend on the input, its feature maps do.

async function compareWithTorch(backend: 'cpu' | 'wasm') {
  await selectBackend(backend);
  const net = DenseNet.fromHostWeights(
    TINY_ARCHITECTURE,
    checkDenseNetWeights(fixture('tiny.safetensors'), TINY_ARCHITECTURE, 'tiny'),
  );
  const input = nchwToNhwc(fixtureTensor('tiny-io.safetensors', 'input'));
  const x = tf.tensor4d(input.data, input.shape);
  const features = net.features(x);
  const logits = net.logits(x);
  const result = { features: await features.data(), logits: await logits.data(), featureShape: features.shape };
  tf.dispose([x, features, logits]);
  net.dispose();
  return result;
}

for (const backend of ['cpu', 'wasm'] as const) {
  test.serial(
    `on ${backend}: feature maps after norm5 and logits match PyTorch within 1e-4 of the largest value`,
    async (t) => {
      const ours = await compareWithTorch(backend);
      const torchFeatures = nchwToNhwc(fixtureTensor('tiny-io.safetensors', 'features'));
      t.deepEqual(ours.featureShape, torchFeatures.shape);
      const featureError = maxAbsDiff(ours.features, torchFeatures.data) / maxAbs(torchFeatures.data);
      const torchLogits = fixtureTensor('tiny-io.safetensors', 'logits').data;
      const logitError = maxAbsDiff(ours.logits, torchLogits) / maxAbs(torchLogits);
      t.log(
        `${backend}: relative error features ${featureError.toExponential(2)}, logits ${logitError.toExponential(2)}`,
      );
      t.true(featureError <= 1e-4);
      t.true(logitError <= 1e-4);
    },
  );
}

test('the two fixture inputs give clearly different feature maps, so the comparison can fail', (t) => {
  const f = fixtureTensor('tiny-io.safetensors', 'features');
  const half = f.data.length / 2;
  const diff = maxAbsDiff(f.data.subarray(0, half), f.data.subarray(half));
  t.true(diff > 0.1 * maxAbs(f.data));
});

test('old torchvision key names and DataParallel prefixes import to the same tensors', (t) => {
  const reference = checkDenseNetWeights(fixture('tiny.safetensors'), TINY_ARCHITECTURE, 'tiny');
  for (const file of ['tiny-legacy-keys.safetensors', 'tiny-module-prefix.safetensors']) {
    const other = checkDenseNetWeights(fixture(file), TINY_ARCHITECTURE, file);
    t.deepEqual([...other.keys()].sort(), [...reference.keys()].sort(), file);
    for (const [name, tensor] of reference) t.deepEqual(other.get(name)?.data, tensor.data, `${file} ${name}`);
  }
});

test('a missing, mis-shaped or unexpected parameter is named in the error', (t) => {
  const weights = fixture('tiny.safetensors');
  const missing = new Map(weights);
  missing.delete('features.denseblock2.denselayer1.norm1.running_var');
  t.throws(() => checkDenseNetWeights(missing, TINY_ARCHITECTURE, 'w.safetensors'), {
    message:
      /w\.safetensors: missing parameter features\.denseblock2\.denselayer1\.norm1\.running_var \(shape \[16\]\)/,
  });
  t.throws(() => checkDenseNetWeights(weights, { ...TINY_ARCHITECTURE, numClasses: 14 }, 'w'), {
    message: /classifier\.weight has shape \[3, 32\] but the architecture needs \[14, 32\]/,
  });
  const extra = new Map(weights);
  extra.set('features.denseblock4.denselayer1.conv1.weight', { dtype: 'F32', shape: [1], data: new Float32Array(1) });
  t.throws(() => checkDenseNetWeights(extra, TINY_ARCHITECTURE, 'w'), {
    message: /unexpected parameter features\.denseblock4/,
  });
});

test('the named variants have torchvision parameter counts', (t) => {
  const count = (variant: 'densenet121' | 'densenet169' | 'densenet201') =>
    expectedParameters(namedDenseNet(variant, 1000))
      .filter((p) => !p.name.includes('running_'))
      .reduce((sum, p) => sum + p.shape.reduce((a, b) => a * b, 1), 0);
  // torchvision documents 7,978,856 / 14,149,480 / 20,013,928 parameters for the ImageNet models.
  t.is(count('densenet121'), 7_978_856);
  t.is(count('densenet169'), 14_149_480);
  t.is(count('densenet201'), 20_013_928);
  t.is(featureChannels(namedDenseNet('densenet201', 3)), 1920);
});
