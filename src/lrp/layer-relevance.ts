import * as tf from '@tensorflow/tfjs';

// Relevance through the pools (BatchNorms are fused into the convolutions: see densenet-lrp.ts).
import { dilate, stabilise } from './conv-relevance.js';

/** Backends whose tensors live in this process's memory, where reading one back costs a copy, not a GPU sync. */
const HOST_BACKENDS = new Set(['cpu', 'wasm', 'tensorflow']);

/** Whether synchronous reads are cheap (and possible: the webgpu backend cannot read synchronously in Node). */
export function onHostBackend(): boolean {
  return HOST_BACKENDS.has(tf.getBackend());
}

/**
 * Winner takes all through a max pool (window k, stride s, 'valid' on an already padded input): each
 * window's relevance goes to the input that won it (the first one on ties, so nothing is counted twice).
 * No backend has a cheap gradient of the max pool here (the wasm backend has none), so on host backends
 * this is one loop over the windows; elsewhere it is built from tensor ops.
 */
export function maxPoolRelevance(
  input: tf.Tensor4D,
  pooled: tf.Tensor4D,
  r: tf.Tensor4D,
  window: number,
  stride: number,
): tf.Tensor4D {
  return onHostBackend()
    ? maxPoolRelevanceOnHost(input, pooled, r, window, stride)
    : maxPoolRelevanceAsTensors(input, pooled, r, window, stride);
}

/** maxPoolRelevance as a loop over the data (synchronous reads: for host backends). */
export function maxPoolRelevanceOnHost(
  input: tf.Tensor4D,
  pooled: tf.Tensor4D,
  r: tf.Tensor4D,
  window: number,
  stride: number,
): tf.Tensor4D {
  const [n, height, width, c] = input.shape;
  const [, ho, wo] = pooled.shape;
  const x = input.dataSync();
  const relevance = r.dataSync();
  const result = new Float32Array(x.length);
  for (let b = 0; b < n; b += 1) {
    for (let i = 0; i < ho; i += 1) {
      for (let j = 0; j < wo; j += 1) {
        const out = ((b * ho + i) * wo + j) * c;
        for (let ch = 0; ch < c; ch += 1) {
          // The first maximum in the pool's scan order (row by row), as the tensor version's ties.
          let best = -1;
          let bestValue = Number.NEGATIVE_INFINITY;
          for (let dy = 0; dy < window; dy += 1) {
            const row = ((b * height + i * stride + dy) * width + j * stride) * c + ch;
            for (let dx = 0; dx < window; dx += 1) {
              const at = row + dx * c;
              const v = x[at] as number;
              if (v > bestValue) {
                bestValue = v;
                best = at;
              }
            }
          }
          if (best >= 0) result[best] = (result[best] as number) + (relevance[out + ch] as number);
        }
      }
    }
  }
  return tf.tensor4d(result, [n, height, width, c]);
}

/** maxPoolRelevance from strided slices, one per window offset (no reads back: for GPU backends). */
export function maxPoolRelevanceAsTensors(
  input: tf.Tensor4D,
  pooled: tf.Tensor4D,
  r: tf.Tensor4D,
  window: number,
  stride: number,
): tf.Tensor4D {
  return tf.tidy(() => {
    const [n, height, width, c] = input.shape;
    const [, ho, wo] = pooled.shape;
    let taken: tf.Tensor4D = tf.zerosLike(pooled);
    let result: tf.Tensor4D = tf.zerosLike(input);
    for (let dy = 0; dy < window; dy += 1) {
      for (let dx = 0; dx < window; dx += 1) {
        const view = tf.stridedSlice(
          input,
          [0, dy, dx, 0],
          [n, dy + (ho - 1) * stride + 1, dx + (wo - 1) * stride + 1, c],
          [1, stride, stride, 1],
        ) as tf.Tensor4D;
        const wins = tf.mul(tf.cast(tf.equal(view, pooled), 'float32'), tf.sub(1, taken)) as tf.Tensor4D;
        taken = tf.add(taken, wins);
        const spread = dilate(tf.mul(wins, r) as tf.Tensor4D, stride);
        result = tf.add(
          result,
          tf.pad(spread, [
            [0, 0],
            [dy, height - dy - spread.shape[1]],
            [dx, width - dx - spread.shape[2]],
            [0, 0],
          ]),
        );
      }
    }
    return result;
  });
}

/**
 * The adjoint of a 2x2/2 average pool: a quarter of each pooled value over its window, on an input of
 * `height` x `width` (a row or column the pool dropped gets nothing).
 */
export function spreadOverPoolWindows(s: tf.Tensor4D, height: number, width: number): tf.Tensor4D {
  const [, ho, wo] = s.shape;
  // Nearest-neighbour doubling repeats each value over its window (a 6-D tile is slow on wasm); the 1/4 is
  // applied before, on a quarter of the values.
  const spread = tf.image.resizeNearestNeighbor(tf.mul(s, 0.25) as tf.Tensor4D, [ho * 2, wo * 2]);
  if (height === ho * 2 && width === wo * 2) return spread;
  return tf.pad(spread, [
    [0, 0],
    [0, height - ho * 2],
    [0, width - wo * 2],
    [0, 0],
  ]) as tf.Tensor4D;
}

/** Epsilon rule through a 2x2/2 average pool (weights 1/4); a row or column the pool dropped gets none. */
export function averagePoolRelevance(
  input: tf.Tensor4D,
  pooled: tf.Tensor4D,
  r: tf.Tensor4D,
  epsilon: number,
): tf.Tensor4D {
  return tf.tidy(() => {
    const [, height, width] = input.shape;
    return tf.mul(
      input,
      spreadOverPoolWindows(tf.div(r, stabilise(pooled, epsilon)) as tf.Tensor4D, height, width),
    ) as tf.Tensor4D;
  });
}
