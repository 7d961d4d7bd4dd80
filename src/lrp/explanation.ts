// What an explanation is, whichever engine made it (DenseNetLrp on TF.js, the ONNX graphs on ONNX Runtime): one
// definition of the record, of how a target names a class, and of how a map becomes a record, so that both engines
// report the same fields computed the same way.

import { GatewayError } from '../errors.js';
import type { LrpOptions } from './composites.js';

export type ExplainTarget = 'predicted' | 'all' | number | string;

export interface Explanation {
  /** Index and name of the explained class. */
  targetIndex: number;
  targetClass: string;
  /** The explained score: the logit of the target class, which is where relevance starts. */
  logit: number;
  /** Every class's logit for this image, from the same forward pass (classification needs no second one). */
  logits: number[];
  /** Relevance per input pixel (summed over channels), row-major, inputSize x inputSize. */
  relevance: Float32Array;
  size: number;
  relevanceSum: number;
  /** (logit - relevanceSum) / logit: the share biases and stabilisers absorbed on the way down. */
  absorbedShare: number;
  composite: LrpOptions['composite'];
  parameters: Omit<LrpOptions, 'composite'>;
}

/** The index of a class named by index or name; EXPLAIN_TARGET_UNKNOWN when the model has no such class. */
export function explainedClassIndex(classes: readonly string[], target: number | string): number {
  const index = typeof target === 'number' ? target : classes.indexOf(target);
  if (!Number.isInteger(index) || index < 0 || index >= classes.length) {
    throw new GatewayError(
      'EXPLAIN_TARGET_UNKNOWN',
      `cannot explain class '${target}': the model's classes are ${classes.join(', ')}`,
    );
  }
  return index;
}

/** One image's explanation of class `targetIndex` from its logits and relevance map (size x size). */
export function makeExplanation(
  classes: readonly string[],
  options: LrpOptions,
  targetIndex: number,
  logits: number[],
  relevance: Float32Array,
  size: number,
): Explanation {
  const { composite, ...parameters } = options;
  const relevanceSum = relevance.reduce((a, b) => a + b, 0);
  const logit = logits[targetIndex] ?? 0;
  return {
    targetIndex,
    targetClass: classes[targetIndex] ?? String(targetIndex),
    logit,
    logits,
    relevance,
    size,
    relevanceSum,
    absorbedShare: logit === 0 ? 0 : (logit - relevanceSum) / logit,
    composite,
    parameters,
  };
}
