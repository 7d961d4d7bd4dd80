import * as tf from '@tensorflow/tfjs';

// Relevance through the layers that are not convolutions: pools and the per-channel affine maps of
// inference BatchNorm.
import { dilate, stabilise } from './conv-relevance.js';

/**
 * Winner takes all through a max pool (window k, stride s, 'valid' on an already padded input): each
 * window's relevance goes to the input that won it (the first one on ties, so nothing is counted twice).
 * Built from strided slices, one per window offset, instead of a gradient kernel.
 */
export function maxPoolRelevance(input: tf.Tensor4D, pooled: tf.Tensor4D, r: tf.Tensor4D, window: number, stride: number): tf.Tensor4D {
  return tf.tidy(() => {
    const [n, height, width, c] = input.shape;
    const [, ho, wo] = pooled.shape;
    let taken: tf.Tensor4D = tf.zerosLike(pooled);
    let result: tf.Tensor4D = tf.zerosLike(input);
    for (let dy = 0; dy < window; dy += 1) {
      for (let dx = 0; dx < window; dx += 1) {
        const view = tf.stridedSlice(input, [0, dy, dx, 0], [n, dy + (ho - 1) * stride + 1, dx + (wo - 1) * stride + 1, c], [1, stride, stride, 1]) as tf.Tensor4D;
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

/** Epsilon rule through a 2x2/2 average pool (weights 1/4); a row or column the pool dropped gets none. */
export function averagePoolRelevance(input: tf.Tensor4D, pooled: tf.Tensor4D, r: tf.Tensor4D, epsilon: number): tf.Tensor4D {
  return tf.tidy(() => {
    const [n, height, width, c] = input.shape;
    const [, ho, wo] = pooled.shape;
    const s = tf.div(r, stabilise(pooled, epsilon));
    const up = tf.reshape(tf.tile(tf.reshape(s, [n, ho, 1, wo, 1, c]), [1, 1, 2, 1, 2, 1]), [n, ho * 2, wo * 2, c]);
    const full = tf.pad(up, [
      [0, 0],
      [0, height - ho * 2],
      [0, width - wo * 2],
      [0, 0],
    ]);
    return tf.mul(tf.mul(input, full), 0.25) as tf.Tensor4D;
  });
}

/** Epsilon rule through global average pooling, a linear map with weights 1/(H*W). */
export function globalPoolRelevance(input: tf.Tensor4D, pooled: tf.Tensor2D, r: tf.Tensor2D, epsilon: number): tf.Tensor4D {
  return tf.tidy(() => {
    const [n, height, width, c] = input.shape;
    const s = tf.reshape(tf.div(r, stabilise(pooled, epsilon)), [n, 1, 1, c]);
    return tf.mul(tf.mul(input, s), 1 / (height * width)) as tf.Tensor4D;
  });
}

/** Epsilon rule through a per-channel affine map y = x * scale + offset (an inference BatchNorm). */
export function affineRelevance(x: tf.Tensor4D, scale: tf.Tensor1D, y: tf.Tensor4D, r: tf.Tensor4D, epsilon: number): tf.Tensor4D {
  return tf.tidy(() => tf.div(tf.mul(tf.mul(x, scale), r), stabilise(y, epsilon)) as tf.Tensor4D);
}
