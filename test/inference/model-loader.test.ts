import test from 'ava';
import * as tf from '@tensorflow/tfjs';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { selectBackend } from '../../src/inference/backend.js';
import { checkModelDirectory, loadModel, weightsSha256 } from '../../src/inference/model-loader.js';
import { encodeTfjsWeights, writeTfjsWeights } from '../../src/inference/tfjs-weights-format.js';
import { fixtureTensor, maxAbsDiff, nchwToNhwc, tinyModelDir } from '../helpers/tiny-densenet.js';

test.before(async () => {
  await selectBackend('cpu');
});

test('a model directory loads when its manifest and checksum agree', (t) => {
  const checked = checkModelDirectory(tinyModelDir());
  t.is(checked.manifest.name, 'tiny-test');
  t.is(checked.weights.size, 81);
});

test('weights that do not match the manifest checksum are refused with a clear message', (t) => {
  const dir = tinyModelDir();
  const file = path.join(dir, 'weights.safetensors');
  const bytes = readFileSync(file);
  bytes[bytes.length - 1] = (bytes[bytes.length - 1] ?? 0) ^ 0x01; // one flipped bit in the last weight
  writeFileSync(file, bytes);
  const error = t.throws(() => checkModelDirectory(dir));
  t.is((error as { code?: string }).code, 'WEIGHTS_CHECKSUM');
  t.regex(error.message, /SHA-256 is [0-9a-f]{64} but the manifest says [0-9a-f]{64}.*refusing/);
});

test('a manifest whose classes disagree with the architecture names the key', (t) => {
  const dir = tinyModelDir({ classes: ['COVID-19', 'normal'] });
  t.throws(() => checkModelDirectory(dir), { message: /classes: lists 2 classes but architecture\.numClasses is 3/ });
});

test('the TensorFlow.js weights format round-trips to the same network output', async (t) => {
  const dir = tinyModelDir();
  const checked = checkModelDirectory(dir);
  const files = await encodeTfjsWeights(checked.weights);
  writeTfjsWeights(dir, 'weights.json', files);
  const manifestPath = path.join(dir, 'manifest.json');
  const manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as { weights: unknown };
  manifest.weights = {
    file: 'weights.json',
    format: 'tfjs',
    sha256: weightsSha256([files.manifestJson, files.binary]),
  };
  writeFileSync(manifestPath, JSON.stringify(manifest));

  const fromTfjs = loadModel(dir);
  t.is(fromTfjs.manifest.weights.format, 'tfjs');
  const input = nchwToNhwc(fixtureTensor('tiny-io.safetensors', 'input'));
  const x = tf.tensor4d(input.data, input.shape);
  const logits = fromTfjs.network.logits(x);
  t.true(maxAbsDiff(await logits.data(), fixtureTensor('tiny-io.safetensors', 'logits').data) < 1e-5);
  tf.dispose([x, logits]);
  fromTfjs.network.dispose();
});
