import { inputBatch } from '../engines/tfjs-batch.js';
import type { LoadedModel } from '../inference/model-loader.js';

export interface Classification {
  classes: string[];
  probabilities: number[];
  logits: number[];
  predicted: string;
}

/**
 * Classifies images already preprocessed, with one forward pass on a TF.js model (training's evaluation uses it:
 * training is TF.js's; stored files go through analyse-images.ts and an engine, which decode them the one way
 * the daemon does).
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
