import * as tf from '@tensorflow/tfjs';
import { BN_EPSILON } from '../inference/host-norm.js';

/**
 * Training-mode BatchNorm over NHWC (statistics per channel over batch and space) with its gradient
 * written out (the textbook fused form):
 *   dbeta = sum(dy), dgamma = sum(dy * xhat), dx = gamma / sigma * (dy - dbeta / m - xhat * dgamma / m).
 * Why: autodiff through tf.moments reduces over the leading axes, which the wasm backend does by
 * transposing the whole tensor first; a per-channel sum over the m = N*H*W rows is a [1, m] x [m, C]
 * matrix product instead, which XNNPACK does in a fraction of the time (measured: 0.6 ms vs 23 ms for
 * 16 x 64 x 64 x 24). The forward is tfjs' fused batchNorm kernel.
 * `onStatistics` receives the batch mean and biased variance (for the running statistics).
 */
export function batchStatisticsNorm(
  x: tf.Tensor4D,
  gamma: tf.Tensor1D,
  beta: tf.Tensor1D,
  onStatistics: (mean: tf.Tensor1D, variance: tf.Tensor1D) => void,
): tf.Tensor4D {
  const [n, h, w, c] = x.shape;
  const m = n * h * w;
  const op = tf.customGrad(
    (
      xIn: tf.Tensor | tf.GradSaveFunc,
      gIn: tf.Tensor | tf.GradSaveFunc,
      bIn: tf.Tensor | tf.GradSaveFunc,
      save: tf.Tensor | tf.GradSaveFunc,
    ) => {
      const input = xIn as tf.Tensor4D;
      const scale = gIn as tf.Tensor1D;
      const offset = bIn as tf.Tensor1D;
      const ones = tf.ones([1, m]);
      const mean = tf.reshape(tf.div(tf.matMul(ones, tf.reshape(input, [m, c])), m), [c]) as tf.Tensor1D;
      const squares = tf.square(tf.sub(input, mean));
      const variance = tf.reshape(tf.div(tf.matMul(ones, tf.reshape(squares, [m, c])), m), [c]) as tf.Tensor1D;
      onStatistics(mean, variance);
      (save as tf.GradSaveFunc)([input, mean, variance, scale]);
      return {
        value: tf.batchNorm(input, mean, variance, offset, scale, BN_EPSILON),
        gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
          const [sx, sMean, sVar, sScale] = saved as [tf.Tensor4D, tf.Tensor1D, tf.Tensor1D, tf.Tensor1D];
          return tf.tidy(() => {
            const onesRow = tf.ones([1, m]);
            const xhat = tf.batchNorm(sx, sMean, sVar, undefined, undefined, BN_EPSILON);
            const dBeta = tf.reshape(tf.matMul(onesRow, tf.reshape(dy, [m, c])), [c]);
            const dGamma = tf.reshape(tf.matMul(onesRow, tf.reshape(tf.mul(dy, xhat), [m, c])), [c]);
            const k = tf.mul(sScale, tf.rsqrt(tf.add(sVar, BN_EPSILON)));
            const dx = tf.sub(
              tf.mul(dy, k),
              tf.add(tf.mul(xhat, tf.mul(dGamma, tf.div(k, m))), tf.mul(dBeta, tf.div(k, m))),
            );
            return [dx, dGamma, dBeta];
          });
        },
      };
    },
  );
  return op(x, gamma, beta) as tf.Tensor4D;
}
