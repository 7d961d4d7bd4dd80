// SEAM (issue 18): signatures fixed here; the body is written in the ONNX LRP branch.
import type { DenseNetGraphSource } from '../inference/onnx/densenet-graph.js';
import type { LrpOptions } from './composites.js';

export interface LrpGraphSource extends DenseNetGraphSource {
  /** Class names in output order (numClasses of them). */
  classes: readonly string[];
  /** Parsed options (lrpOptionsSchema): the composite and its parameters. */
  options: LrpOptions;
}

/**
 * One LRP composite as an ONNX model, the same rules and parameters as DenseNetLrp:
 * inputs  'input'  float32 [N, S, S, C] NHWC (emitInput), 'target' int64 [N] (a class index, or -1 for the
 *                  predicted class of that image);
 * outputs 'logits' float32 [N, K], 'target_index' int64 [N] (the class explained), 'relevance' float32 [N, S, S]
 *                  (summed over the input channels, like Explanation.relevance).
 */
export function buildLrpModel(source: LrpGraphSource): Uint8Array {
  void source;
  throw new Error('SEAM: buildLrpModel is written in the ONNX LRP branch');
}
