import * as tf from '@tensorflow/tfjs';
import { readFileSync } from 'node:fs';
import { GatewayError, describeError } from '../errors.js';
import type { LoadedModel } from '../inference/model-loader.js';
import { readImage } from '../imaging/read-image.js';
import { preprocess } from '../imaging/preprocess.js';

export interface Classification {
  classes: string[];
  probabilities: number[];
  logits: number[];
  predicted: string;
}

export type ImageOutcome = { ok: true; classification: Classification } | { ok: false; code: string; reason: string };

/**
 * Turns stored instances into classifications on the current backend: decode and preprocess each file,
 * then one forward pass for the whole batch. A file that cannot be decoded fails alone, with its reason;
 * the rest of the batch still runs.
 */
export class BatchRunner {
  constructor(readonly model: LoadedModel) {}

  async classifyFiles(paths: readonly string[]): Promise<ImageOutcome[]> {
    const outcomes: ImageOutcome[] = new Array(paths.length);
    const inputs: Float32Array[] = [];
    const slots: number[] = [];
    paths.forEach((p, i) => {
      try {
        const image = readImage(readFileSync(p));
        inputs.push(preprocess(image, this.model.manifest.preprocessing).data);
        slots.push(i);
      } catch (error) {
        outcomes[i] = {
          ok: false,
          code: error instanceof GatewayError ? error.code : 'PIXELS_UNREADABLE',
          reason: describeError(error),
        };
      }
    });
    if (inputs.length > 0) {
      const results = await this.classifyTensors(inputs);
      results.forEach((classification, k) => {
        outcomes[slots[k] ?? 0] = { ok: true, classification };
      });
    }
    return outcomes;
  }

  /** Inputs are preprocessed NHWC images, one Float32Array each. */
  async classifyTensors(inputs: readonly Float32Array[]): Promise<Classification[]> {
    const { preprocessing, classes } = this.model.manifest;
    const size = preprocessing.inputSize;
    const channels = preprocessing.channels;
    const batch = new Float32Array(inputs.length * size * size * channels);
    inputs.forEach((input, i) => batch.set(input, i * size * size * channels));
    const logits = tf.tidy(() => {
      // A one-channel model still gets the 3-channel stem torchvision defines; replicate the grey input.
      const x = tf.tensor4d(batch, [inputs.length, size, size, channels]);
      const rgb = channels === 3 ? x : tf.tile(x, [1, 1, 1, 3]);
      return this.model.network.logits(rgb as tf.Tensor4D);
    });
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
