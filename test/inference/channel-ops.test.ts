import test from 'ava';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../../src/inference/backend.js';
import { concatChannels, sliceChannels } from '../../src/inference/channel-ops.js';

// On wasm, channel slices and concatenations run on kernels of our own (copies inside the wasm heap); they
// must give exactly what tf.slice and tf.concat give, for any batch, and leave no tensor behind.

test.before(async () => {
  await selectBackend('wasm');
});

/** Distinct values everywhere, so a row or channel copied from the wrong place cannot go unnoticed. */
const ramp = (shape: [number, number, number, number], start = 0) =>
  tf.tensor4d(
    Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, i) => start + i),
    shape,
  );

const kernelsOf = async (f: () => tf.Tensor) => {
  const info = await tf.profile(() => {
    f().dispose();
    return [];
  });
  return info.kernels.map((k) => k.name);
};

for (const [from, count] of [
  [0, 5],
  [5, 3],
  [2, 4],
  [7, 1],
] as const) {
  test(`channels ${from}..${from + count} of an 8-channel batch of 2: the same values as tf.slice`, async (t) => {
    const x = ramp([2, 3, 5, 8]);
    const ours = sliceChannels(x, from, count);
    const expected = tf.slice(x, [0, 0, 0, from], [2, 3, 5, count]);
    t.deepEqual(ours.shape, [2, 3, 5, count]);
    t.deepEqual(await ours.data(), await expected.data());
    t.true(
      (await kernelsOf(() => sliceChannels(x, from, count))).includes('CxrSliceChannels'),
      'the heap-copy kernel ran',
    );
    tf.dispose([x, ours, expected]);
  });
}

test('channels of parts of different widths side by side: the same values as tf.concat', async (t) => {
  const parts = [ramp([2, 4, 3, 5]), ramp([2, 4, 3, 1], 1000), ramp([2, 4, 3, 32], 2000), ramp([2, 4, 3, 2], 5000)];
  for (let k = 2; k <= parts.length; k += 1) {
    const ours = concatChannels(parts.slice(0, k));
    const expected = tf.concat(parts.slice(0, k), 3);
    t.deepEqual(ours.shape, expected.shape);
    t.deepEqual(await ours.data(), await expected.data());
    tf.dispose([ours, expected]);
  }
  t.true((await kernelsOf(() => concatChannels(parts))).includes('CxrConcatChannels'), 'the heap-copy kernel ran');
  tf.dispose(parts);
});

test('slicing and concatenating inside tf.tidy leaves no tensor behind', (t) => {
  const x = ramp([1, 6, 6, 40]);
  const before = tf.memory().numTensors;
  for (let i = 0; i < 20; i += 1) {
    tf.tidy(() => {
      concatChannels([sliceChannels(x, 0, 8), sliceChannels(x, 8, 32)]);
    });
  }
  t.is(tf.memory().numTensors, before);
  const roundTrip = tf.tidy(() =>
    tf.max(tf.abs(tf.sub(concatChannels([sliceChannels(x, 0, 8), sliceChannels(x, 8, 32)]), x))),
  );
  t.is(roundTrip.dataSync()[0], 0);
  tf.dispose([x, roundTrip]);
  t.is(tf.memory().numTensors, before - 1);
});

test('a channel range outside the tensor, or parts of different sizes, are refused with the shapes', (t) => {
  const x = ramp([1, 2, 2, 4]);
  t.throws(() => sliceChannels(x, 2, 3), { message: /channels 2\.\.5 of 4/ });
  const y = ramp([1, 2, 3, 4]);
  t.throws(() => concatChannels([x, y]), { message: /1x2x3x4 to 1x2x2x4/ });
  tf.dispose([x, y]);
});
