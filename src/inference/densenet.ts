import * as tf from '@tensorflow/tfjs';
import type { DenseNetArchitecture } from './densenet-architecture.js';
import type { HostTensor } from './weight-import.js';
import { unreachable } from '../errors.js';
import { hostAffineNorm } from './host-norm.js';

/** Inference-time BatchNorm as the per-channel affine map it is: y = x * scale + offset. */
export interface AffineNorm {
  scale: tf.Tensor1D;
  offset: tf.Tensor1D;
}

export interface DenseLayerParams {
  norm1: AffineNorm;
  /** HWIO */
  conv1: tf.Tensor4D;
  norm2: AffineNorm;
  conv2: tf.Tensor4D;
}

export interface TransitionParams {
  norm: AffineNorm;
  conv: tf.Tensor4D;
}

export interface DenseNetParams {
  conv0: tf.Tensor4D;
  norm0: AffineNorm;
  blocks: DenseLayerParams[][];
  transitions: TransitionParams[];
  norm5: AffineNorm;
  /** [features, classes] */
  classifierWeight: tf.Tensor2D;
  classifierBias: tf.Tensor1D;
}

/**
 * torchvision's DenseNet, in TensorFlow.js ops only (so it runs on every backend), input NHWC.
 * The stem pads by 3 and convolves "valid": TF's "same" padding is asymmetric for stride 2 and would
 * shift every feature map by a pixel against the PyTorch weights.
 */
export class DenseNet {
  constructor(
    readonly architecture: DenseNetArchitecture,
    readonly params: DenseNetParams,
  ) {}

  /** Builds the tensors from host weights already checked against the architecture (torch layout). */
  static fromHostWeights(architecture: DenseNetArchitecture, weights: ReadonlyMap<string, HostTensor>): DenseNet {
    const get = (name: string): HostTensor => {
      const t = weights.get(name);
      if (t === undefined) unreachable(`weights lack ${name}`); // checkDenseNetWeights guarantees presence
      return t;
    };
    const conv = (name: string) => oihwToHwio(get(name));
    const norm = (prefix: string): AffineNorm => {
      const { scale, offset } = hostAffineNorm(weights, prefix);
      return { scale: tf.tensor1d(scale), offset: tf.tensor1d(offset) };
    };
    const blocks = architecture.blockConfig.map((layers, b) =>
      Array.from({ length: layers }, (_, l) => {
        const prefix = `features.denseblock${b + 1}.denselayer${l + 1}`;
        return {
          norm1: norm(`${prefix}.norm1`),
          conv1: conv(`${prefix}.conv1.weight`),
          norm2: norm(`${prefix}.norm2`),
          conv2: conv(`${prefix}.conv2.weight`),
        };
      }),
    );
    const transitions = architecture.blockConfig.slice(0, -1).map((_, b) => ({
      norm: norm(`features.transition${b + 1}.norm`),
      conv: conv(`features.transition${b + 1}.conv.weight`),
    }));
    const classifier = get('classifier.weight');
    const [classes, features] = classifier.shape as [number, number];
    return new DenseNet(architecture, {
      conv0: conv('features.conv0.weight'),
      norm0: norm('features.norm0'),
      blocks,
      transitions,
      norm5: norm('features.norm5'),
      classifierWeight: tf.tensor2d(transpose2d(classifier.data, classes, features), [features, classes]),
      classifierBias: tf.tensor1d(get('classifier.bias').data),
    });
  }

  /** Feature maps after norm5 (before the final ReLU): what the reference comparison checks. */
  features(input: tf.Tensor4D): tf.Tensor4D {
    return tf.tidy(() => {
      const p = this.params;
      let x = tf.pad(input, [
        [0, 0],
        [3, 3],
        [3, 3],
        [0, 0],
      ]);
      x = tf.conv2d(x, p.conv0, 2, 'valid');
      x = tf.relu(applyNorm(x, p.norm0));
      // Zero padding is exact for this max pool: its inputs are ReLU outputs, never below zero.
      x = tf.maxPool(
        tf.pad(x, [
          [0, 0],
          [1, 1],
          [1, 1],
          [0, 0],
        ]),
        3,
        2,
        'valid',
      );
      p.blocks.forEach((layers, b) => {
        const maps: tf.Tensor4D[] = [x];
        for (const layer of layers) {
          // One scope per layer: its concatenated input (the largest tensor of the layer) is freed as soon as
          // the layer is done, not at the end of the pass, so memory grows with the block, not with its square.
          maps.push(
            tf.tidy(() => {
              const input = maps.length === 1 ? x : tf.concat(maps, 3);
              let h = tf.relu(applyNorm(input, layer.norm1));
              h = tf.conv2d(h, layer.conv1, 1, 'valid');
              h = tf.relu(applyNorm(h, layer.norm2));
              return tf.conv2d(h, layer.conv2, 1, 'same');
            }),
          );
        }
        x = tf.concat(maps, 3);
        const transition = p.transitions[b];
        if (transition !== undefined) {
          // torchvision convolves, then pools; a 1x1 convolution and an average pool commute, and pooling
          // first convolves a quarter of the pixels (the same result up to float rounding).
          x = tf.avgPool(tf.relu(applyNorm(x, transition.norm)), 2, 2, 'valid');
          x = tf.conv2d(x, transition.conv, 1, 'valid');
        }
      });
      return applyNorm(x, p.norm5);
    });
  }

  /** Logits [batch, classes]. */
  logits(input: tf.Tensor4D): tf.Tensor2D {
    return tf.tidy(() => {
      const pooled = tf.mean(tf.relu(this.features(input)), [1, 2]) as tf.Tensor2D;
      return tf.add(tf.matMul(pooled, this.params.classifierWeight), this.params.classifierBias);
    });
  }

  dispose(): void {
    const p = this.params;
    const norms = (n: AffineNorm) => [n.scale, n.offset];
    tf.dispose([
      p.conv0,
      ...norms(p.norm0),
      ...p.blocks.flat().flatMap((l) => [...norms(l.norm1), l.conv1, ...norms(l.norm2), l.conv2]),
      ...p.transitions.flatMap((t) => [...norms(t.norm), t.conv]),
      ...norms(p.norm5),
      p.classifierWeight,
      p.classifierBias,
    ]);
  }
}

export function applyNorm<T extends tf.Tensor>(x: T, norm: AffineNorm): T {
  return tf.add(tf.mul(x, norm.scale), norm.offset);
}

function oihwToHwio(t: HostTensor): tf.Tensor4D {
  const [o, i, h, w] = t.shape as [number, number, number, number];
  const out = new Float32Array(t.data.length);
  for (let oo = 0; oo < o; oo += 1)
    for (let ii = 0; ii < i; ii += 1)
      for (let hh = 0; hh < h; hh += 1)
        for (let ww = 0; ww < w; ww += 1) {
          out[((hh * w + ww) * i + ii) * o + oo] = t.data[((oo * i + ii) * h + hh) * w + ww] ?? 0;
        }
  return tf.tensor4d(out, [h, w, i, o]);
}

function transpose2d(data: Float32Array, rows: number, columns: number): Float32Array {
  const out = new Float32Array(data.length);
  for (let r = 0; r < rows; r += 1) for (let c = 0; c < columns; c += 1) out[c * rows + r] = data[r * columns + c] ?? 0;
  return out;
}
