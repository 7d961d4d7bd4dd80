import * as tf from '@tensorflow/tfjs';
import type { LoadedModel } from '../inference/model-loader.js';
import type { PreprocessingSpec } from '../imaging/preprocessing-spec.js';

export interface Classification {
  classes: string[];
  probabilities: number[];
  logits: number[];
  predicted: string;
}

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

/**
 * Classifies images already preprocessed, with one forward pass (training's evaluation uses it; stored files go
 * through analyse-images.ts, which decodes them the one way the daemon does).
 */
export class BatchRunner {
  constructor(readonly model: LoadedModel) {}

  async classifyTensors(inputs: readonly Float32Array[]): Promise<Classification[]> {
    const { preprocessing, classes } = this.model.manifest;
    const batch = inputBatch(inputs, preprocessing);
    const logits = this.model.network.logits(batch);
    batch.dispose();
    const values = await logits.data();
    logits.dispose();
    const n = classes.length;
    return inputs.map((_, i) => classificationFromLogits(classes, Array.from(values.subarray(i * n, (i + 1) * n))));
  }
}

/** Softmax probabilities and the most probable class, from one image's logits (numerically stable). */
export function classificationFromLogits(classes: readonly string[], logits: number[]): Classification {
  const top = Math.max(...logits);
  const exps = logits.map((l) => Math.exp(l - top));
  const total = exps.reduce((a, b) => a + b, 0);
  const probabilities = exps.map((e) => e / total);
  return { classes: [...classes], probabilities, logits, predicted: classes[logits.indexOf(top)] ?? '' };
}
