// A torchvision DenseNet as ONNX graphs, built at model load from the checked weights: the same computation as
// the TF.js DenseNet (densenet.ts), NCHW inside as ONNX Runtime's kernels want it.
import type { PreprocessingSpec } from '../../imaging/preprocessing-spec.js';
import type { DenseNetArchitecture } from '../densenet-architecture.js';
import { hostAffineNorm } from '../host-norm.js';
import type { HostTensor } from '../weight-import.js';
import { OnnxGraphBuilder } from './onnx-graph.js';

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
  const g = new OnnxGraphBuilder('densenet_forward');
  const logits = emitForward(g, source, emitInput(g, source.preprocessing));
  g.output('logits', 'float32', ['N', source.architecture.numClasses], logits);
  return g.toBytes();
}

/**
 * The network from the NCHW 3-channel input to the logits [N, K]. Two BatchNorms fold into the convolution
 * before them (norm0 into conv0, norm2 into conv1: each follows its convolution directly); the others follow a
 * Concat or a block's output and stay a per-channel affine map (affine(), below).
 */
function emitForward(g: OnnxGraphBuilder, source: DenseNetGraphSource, input: string): string {
  const { architecture: arch } = source;
  const w = new WeightReader(source.weights);

  // Stem: conv0 7x7/2 (+ norm0 folded), ReLU, max pool 3x3/2 (ONNX pads a max pool with -inf, as torch does).
  let x = g.node('Relu', [foldedConv(g, w, input, 'features.conv0.weight', 'features.norm0', 2, 3)], {}, 'relu0');
  x = g.node(
    'MaxPool',
    [x],
    { kernel_shape: { ints: [3, 3] }, strides: { ints: [2, 2] }, pads: { ints: [1, 1, 1, 1] } },
    'pool0',
  );

  arch.blockConfig.forEach((layers, b) => {
    for (let l = 0; l < layers; l += 1) {
      const prefix = `features.denseblock${b + 1}.denselayer${l + 1}`;
      let h = g.node('Relu', [affine(g, w, x, `${prefix}.norm1`)], {}, `${prefix}.relu1`);
      h = g.node(
        'Relu',
        [foldedConv(g, w, h, `${prefix}.conv1.weight`, `${prefix}.norm2`, 1, 0)],
        {},
        `${prefix}.relu2`,
      );
      h = conv(g, w, h, `${prefix}.conv2.weight`, 1, 1);
      x = g.node('Concat', [x, h], { axis: { i: 1 } }, `${prefix}.concat`);
    }
    if (b !== arch.blockConfig.length - 1) {
      const prefix = `features.transition${b + 1}`;
      // torchvision convolves, then pools; a 1x1 convolution and an average pool commute, and pooling first
      // convolves a quarter of the pixels (as the TF.js DenseNet does; equal up to float rounding).
      x = g.node('Relu', [affine(g, w, x, `${prefix}.norm`)], {}, `${prefix}.relu`);
      x = g.node('AveragePool', [x], { kernel_shape: { ints: [2, 2] }, strides: { ints: [2, 2] } }, `${prefix}.pool`);
      x = conv(g, w, x, `${prefix}.conv.weight`, 1, 0);
    }
  });

  x = g.node('Relu', [affine(g, w, x, 'features.norm5')], {}, 'relu5');
  x = g.node('GlobalAveragePool', [x], {}, 'pooled');
  x = g.node('Flatten', [x], { axis: { i: 1 } }, 'pooled_flat');
  const classifier = w.get('classifier.weight');
  return g.node(
    'Gemm',
    [
      x,
      g.constant(classifier.data, classifier.shape, 'classifier.weight'),
      constantOf(g, w.get('classifier.bias'), 'classifier.bias'),
    ],
    { transB: { i: 1 } },
    'logits_raw',
  );
}

/** The weights by name; checkDenseNetWeights has made sure every one is there, so a miss is a bug here. */
class WeightReader {
  constructor(private readonly weights: ReadonlyMap<string, HostTensor>) {}

  get(name: string): HostTensor {
    const t = this.weights.get(name);
    if (t === undefined) throw new Error(`DenseNet graph: the weights lack ${name}`);
    return t;
  }

  get map(): ReadonlyMap<string, HostTensor> {
    return this.weights;
  }
}

function constantOf(g: OnnxGraphBuilder, t: HostTensor, hint: string): string {
  return g.constant(t.data, t.shape, hint);
}

/** A convolution without bias (torchvision's DenseNet convolutions have none). */
function conv(g: OnnxGraphBuilder, w: WeightReader, x: string, name: string, stride: number, pad: number): string {
  const weight = w.get(name);
  const [, , kh = 1, kw = 1] = weight.shape;
  return g.node(
    'Conv',
    [x, constantOf(g, weight, name)],
    { kernel_shape: { ints: [kh, kw] }, strides: { ints: [stride, stride] }, pads: { ints: [pad, pad, pad, pad] } },
    name.replace(/\.weight$/, ''),
  );
}

/**
 * Convolution `name` followed directly by BatchNorm `norm`, as one Conv with bias: output channel o's filter
 * times the norm's scale[o], bias offset[o] (the folding hostAffineNorm computes for both engines).
 */
function foldedConv(
  g: OnnxGraphBuilder,
  w: WeightReader,
  x: string,
  name: string,
  norm: string,
  stride: number,
  pad: number,
): string {
  const weight = w.get(name);
  const [out = 0, , kh = 1, kw = 1] = weight.shape;
  const { scale, offset } = hostAffineNorm(w.map, norm);
  const perFilter = weight.data.length / out;
  const folded = new Float32Array(weight.data.length);
  for (let i = 0; i < folded.length; i += 1)
    folded[i] = (weight.data[i] ?? 0) * (scale[Math.floor(i / perFilter)] ?? 0);
  return g.node(
    'Conv',
    [x, g.constant(folded, weight.shape, name), g.constant(offset, [out], `${norm}.offset`)],
    { kernel_shape: { ints: [kh, kw] }, strides: { ints: [stride, stride] }, pads: { ints: [pad, pad, pad, pad] } },
    name.replace(/\.weight$/, ''),
  );
}

/**
 * BatchNorm `prefix` (inference) on NCHW x as x * scale + offset per channel: a BatchNormalization node with the
 * folded scale and offset, mean 0, variance 1 and epsilon 0 (so 1 / sqrt(var + eps) is exactly 1). Not Mul + Add:
 * ONNX Runtime's CPU provider runs convolutions in a blocked channel layout (NCHWc) and keeps BatchNormalization in
 * it, while a Mul + Add pair made it reorder the tensor out of that layout and back around every dense layer
 * (DenseNet-201, profiled: 200 Reorder nodes, about 7% of the forward pass, gone with BatchNormalization).
 */
function affine(g: OnnxGraphBuilder, w: WeightReader, x: string, prefix: string): string {
  const { scale, offset } = hostAffineNorm(w.map, prefix);
  const c = scale.length;
  return g.node(
    'BatchNormalization',
    [
      x,
      g.constant(scale, [c], `${prefix}.scale`),
      g.constant(offset, [c], `${prefix}.offset`),
      g.constant(new Float32Array(c), [c], `${prefix}.zero_mean`),
      g.constant(new Float32Array(c).fill(1), [c], `${prefix}.unit_var`),
    ],
    { epsilon: { f: 0 } },
    prefix,
  );
}
