// SEAM (issue 18): signatures fixed here; the bodies are written in the ONNX engine branch.
import type { PreprocessingSpec } from '../../imaging/preprocessing-spec.js';
import type { DenseNetArchitecture } from '../densenet-architecture.js';
import type { HostTensor } from '../weight-import.js';
import type { OnnxGraphBuilder } from './onnx-graph.js';

/** What every DenseNet graph is built from: a checked model directory's architecture, weights and preprocessing. */
export interface DenseNetGraphSource {
  architecture: DenseNetArchitecture;
  /** Checked torchvision weights (checkDenseNetWeights), torch layout. */
  weights: ReadonlyMap<string, HostTensor>;
  preprocessing: PreprocessingSpec;
}

/** Name of the graph input every DenseNet graph takes: float32 [N, S, S, C] NHWC, as preprocess() makes it. */
export const INPUT_NAME = 'input';

/**
 * Declares the graph input INPUT_NAME ([N, S, S, channels] float32, N symbolic) and converts it to the network's
 * NCHW layout with 3 channels (a one-channel model's grey input replicated, as the TF.js engine does).
 * Returns the NCHW tensor's name.
 */
export function emitInput(g: OnnxGraphBuilder, preprocessing: PreprocessingSpec): string {
  const size = preprocessing.inputSize;
  const nhwc = g.input(INPUT_NAME, 'float32', ['N', size, size, preprocessing.channels]);
  const nchw = g.node('Transpose', [nhwc], { perm: { ints: [0, 3, 1, 2] } }, 'input_nchw');
  return preprocessing.channels === 3 ? nchw : g.node('Tile', [nchw, g.int64s([1, 3, 1, 1])], {}, 'input_rgb');
}

/** The forward pass as an ONNX model: input INPUT_NAME, output 'logits' float32 [N, numClasses]. */
export function buildForwardModel(source: DenseNetGraphSource): Uint8Array {
  void source;
  throw new Error('SEAM: buildForwardModel is written in the ONNX engine branch');
}
