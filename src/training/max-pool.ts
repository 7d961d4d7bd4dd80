import * as tf from '@tensorflow/tfjs';
import { unreachable } from '../errors.js';

/**
 * Max pool ('valid') whose gradient goes to each window's winner through maxPoolWithArgmax and a scatter:
 * the wasm backend's MaxPoolGrad kernel took about 40x the forward pool (152 ms vs 3.6 ms for the stem
 * pool of a 16 x 128 x 128 batch), the argmax route less than half of that. Among tied maxima the
 * backend's MaxPoolWithArgmax chooses (cpu: the first, wasm: the last); in a DenseNet the pool follows a
 * ReLU, whose ties are zeros that pass no gradient back, so the choice changes nothing upstream.
 *
 * tfjs-backend-wasm 4.22's MaxPoolWithArgmax starts each window's running maximum at FLT_MIN instead of
 * -FLT_MAX: a window whose values are all <= 0 gets index 0 of the whole tensor (and a pooled value of
 * 1.2e-38). The winners are therefore looked up on the input shifted to >= 1 (max pooling commutes with
 * the shift), and the value comes from the ordinary maxPool kernel.
 */
export function trainableMaxPool(x: tf.Tensor4D, window: number, stride: number): tf.Tensor4D {
  const op = tf.customGrad((xIn: tf.Tensor | tf.GradSaveFunc, save: tf.Tensor | tf.GradSaveFunc) => {
    const input = xIn as tf.Tensor4D;
    const shifted = tf.add(tf.sub(input, tf.min(input)), 1) as tf.Tensor4D;
    const { indexes } = tf.maxPoolWithArgmax(shifted, window, stride, 'valid', true);
    if (!indexes) unreachable('maxPoolWithArgmax returned no indexes');
    (save as tf.GradSaveFunc)([indexes]);
    return {
      value: tf.maxPool(input, window, stride, 'valid'),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [winners] = saved as [tf.Tensor];
        return [
          tf.tidy(() =>
            tf.reshape(tf.scatterND(tf.reshape(winners, [-1, 1]), tf.reshape(dy, [-1]), [input.size]), input.shape),
          ),
        ];
      },
    };
  });
  return op(x) as tf.Tensor4D;
}
