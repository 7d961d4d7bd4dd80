import test from 'ava';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../../src/inference/backend.js';
import { collapsePad, collapseTile } from '../../src/inference/webgpu-kernels.js';

// The rank lowering is checked here on the cpu backend (the reference); webgpu.test.ts runs it on webgpu.

test.before(async () => {
  await selectBackend('cpu');
});

test("LRP's rank-6 tile and pad become rank 3", (t) => {
  t.deepEqual(collapseTile([2, 7, 1, 7, 1, 16], [1, 1, 2, 1, 2, 1]), { shape: [14, 7, 16], reps: [1, 2, 2] });
  t.deepEqual(
    collapsePad(
      [2, 7, 1, 7, 1, 16],
      [
        [0, 0],
        [0, 0],
        [0, 1],
        [0, 0],
        [0, 1],
        [0, 0],
      ],
    ),
    {
      shape: [14, 7, 16],
      paddings: [
        [0, 0],
        [0, 7],
        [0, 16],
      ],
    },
  );
  t.deepEqual(collapseTile([1, 1, 1], [1, 1, 1]), { shape: [1], reps: [1] });
});

const cases: Array<{ shape: number[]; reps: number[]; paddings: Array<[number, number]> }> = [
  {
    shape: [2, 3, 1, 4, 1, 5],
    reps: [1, 1, 2, 1, 2, 1],
    paddings: [
      [0, 0],
      [0, 0],
      [0, 1],
      [0, 0],
      [0, 1],
      [0, 0],
    ],
  },
  {
    shape: [1, 3, 2, 1, 4],
    reps: [2, 1, 3, 1, 2],
    paddings: [
      [1, 0],
      [0, 0],
      [2, 1],
      [0, 0],
      [0, 3],
    ],
  },
  {
    shape: [2, 1, 3, 1, 2, 2],
    reps: [1, 3, 1, 1, 1, 2],
    paddings: [
      [0, 0],
      [1, 1],
      [0, 0],
      [0, 2],
      [0, 0],
      [1, 0],
    ],
  },
];

for (const { shape, reps, paddings } of cases) {
  test(`tile ${JSON.stringify(reps)} and pad ${JSON.stringify(paddings)} of [${shape.join(', ')}]: the lowered op gives the same values`, async (t) => {
    const size = shape.reduce((a, b) => a * b, 1);
    const x = tf.tensor(
      Float32Array.from({ length: size }, (_, i) => i + 1),
      shape,
    );

    const tiled = tf.tile(x, reps);
    const lt = collapseTile(shape, reps);
    const tiledLow = tf.reshape(tf.tile(tf.reshape(x, lt.shape), lt.reps), tiled.shape);
    t.deepEqual(await tiledLow.data(), await tiled.data());

    const padded = tf.pad(x, paddings, -1);
    const lp = collapsePad(shape, paddings);
    const paddedLow = tf.reshape(tf.pad(tf.reshape(x, lp.shape), lp.paddings, -1), padded.shape);
    t.deepEqual(await paddedLow.data(), await padded.data());
    t.true(lt.shape.length <= 4 && lp.shape.length <= 4, `lowered ranks ${lt.shape.length}, ${lp.shape.length}`);
    tf.dispose([x, tiled, tiledLow, padded, paddedLow]);
  });
}
