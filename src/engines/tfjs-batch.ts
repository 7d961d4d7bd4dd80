// Preprocessed images as the TF.js network's input tensor: the TF.js engine and training's evaluation share it.

import * as tf from '@tensorflow/tfjs';
import type { PreprocessingSpec } from '../imaging/preprocessing-spec.js';

/**
 * Preprocessed NHWC images (one Float32Array each) as one batch tensor for the network. A one-channel model
 * still gets the 3-channel stem torchvision defines: the grey input is replicated. The caller disposes it.
 */
export function inputBatch(
  inputs: readonly Float32Array[],
  preprocessing: Pick<PreprocessingSpec, 'inputSize' | 'channels'>,
): tf.Tensor4D {
  const size = preprocessing.inputSize;
  const channels = preprocessing.channels;
  const data = new Float32Array(inputs.length * size * size * channels);
  inputs.forEach((input, i) => data.set(input, i * size * size * channels));
  return tf.tidy(() => {
    const x = tf.tensor4d(data, [inputs.length, size, size, channels]);
    return (channels === 3 ? x : tf.tile(x, [1, 1, 1, 3])) as tf.Tensor4D;
  });
}
