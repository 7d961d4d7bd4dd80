import * as tf from '@tensorflow/tfjs';
import type { ConvRule } from './composites.js';

export interface ConvGeometry {
  kernel: number;
  stride: number;
  padding: 'same' | 'valid';
}

// Rules other than epsilon only need their denominators kept off zero (Zennit uses the same order).
const TINY = 1e-6;

/** z + epsilon * sign(z), with sign(0) = +1, so a zero pre-activation never divides. */
export function stabilise(z: tf.Tensor, epsilon: number): tf.Tensor {
  return tf.where(tf.greaterEqual(z, 0), tf.add(z, epsilon), tf.sub(z, epsilon));
}

/**
 * One convolution's LRP step under one rule. The backward direction is computed as forward
 * convolutions on filters flipped in space and transposed in channels, prepared once here: the
 * gradient kernels (Conv2DBackpropInput/Filter) are missing or slow on the wasm backend.
 */
export class ConvRelevance {
  private readonly owned: tf.Tensor[] = [];
  private readonly forwardWeight: tf.Tensor4D;
  private readonly transposedWeight: tf.Tensor4D;
  private readonly positive?: { forward: tf.Tensor4D; transposed: tf.Tensor4D };
  private readonly negative?: { forward: tf.Tensor4D; transposed: tf.Tensor4D };
  private readonly ruleBias: tf.Tensor1D | undefined;

  constructor(
    weight: tf.Tensor4D,
    private readonly bias: tf.Tensor1D | undefined,
    private readonly geometry: ConvGeometry,
    readonly rule: ConvRule,
    private readonly epsilon: number,
  ) {
    const keep = <T extends tf.Tensor>(t: T): T => {
      this.owned.push(t);
      return t;
    };
    const pair = (w: tf.Tensor4D) => ({ forward: w, transposed: keep(flipTranspose(w)) });
    switch (rule.kind) {
      case 'gamma': {
        // Gamma favours positive contributions: w + gamma * w+ (and the same for the bias).
        this.forwardWeight = keep(tf.add(weight, tf.mul(tf.relu(weight), rule.gamma)));
        this.ruleBias = bias ? keep(tf.add(bias, tf.mul(tf.relu(bias), rule.gamma)) as tf.Tensor1D) : undefined;
        break;
      }
      case 'flat':
        this.forwardWeight = keep(tf.onesLike(weight));
        this.ruleBias = undefined;
        break;
      default:
        this.forwardWeight = weight;
        this.ruleBias = bias;
    }
    this.transposedWeight = keep(flipTranspose(this.forwardWeight));
    if (rule.kind === 'alpha-beta' || rule.kind === 'z-box') {
      this.positive = pair(keep(tf.relu(weight)));
      this.negative = pair(keep(tf.neg(tf.relu(tf.neg(weight)))));
    }
  }

  /**
   * Relevance of the input `x` from the relevance `r` of the output. `z` is the output the forward pass
   * computed (conv(x, w) + b), reused where the rule allows. `bounds` are the lowest/highest input
   * tensors for z^B.
   */
  backward(x: tf.Tensor4D, r: tf.Tensor4D, z: tf.Tensor4D | undefined, bounds?: { low: tf.Tensor4D; high: tf.Tensor4D }): tf.Tensor4D {
    return tf.tidy(() => {
      const rule = this.rule;
      const inputShape = x.shape;
      const back = (s: tf.Tensor4D, w: tf.Tensor4D) => this.transposeConv(s, w, inputShape);
      switch (rule.kind) {
        case 'epsilon':
        case 'gamma': {
          const zz = rule.kind === 'epsilon' && z !== undefined ? z : this.forward(x, this.forwardWeight, this.ruleBias);
          const s = tf.div(r, stabilise(zz, this.epsilon)) as tf.Tensor4D;
          return tf.mul(x, back(s, this.transposedWeight));
        }
        case 'alpha-beta': {
          const pos = this.positive;
          const neg = this.negative;
          if (!pos || !neg) throw new Error('alpha-beta weights missing');
          // Inputs here are ReLU outputs (never negative), so the positive part of z is conv(x, w+),
          // the negative part conv(x, w-). Biases stay out of both: the rule then conserves exactly.
          const zp = this.forward(x, pos.forward, undefined);
          let result = tf.mul(back(tf.div(r, tf.add(zp, TINY)) as tf.Tensor4D, pos.transposed), rule.alpha);
          if (rule.beta !== 0) {
            const zn = this.forward(x, neg.forward, undefined);
            const negative = back(tf.div(r, tf.sub(zn, TINY)) as tf.Tensor4D, neg.transposed);
            result = tf.sub(result, tf.mul(negative, rule.beta));
          }
          return tf.mul(x, result);
        }
        case 'z-box': {
          const pos = this.positive;
          const neg = this.negative;
          if (!pos || !neg || !bounds) throw new Error('z-box needs bounds');
          const zb = tf.sub(
            tf.sub(this.forward(x, this.forwardWeight, undefined), this.forward(bounds.low, pos.forward, undefined)),
            this.forward(bounds.high, neg.forward, undefined),
          );
          const s = tf.div(r, stabilise(zb, TINY)) as tf.Tensor4D;
          return tf.sub(
            tf.sub(tf.mul(x, back(s, this.transposedWeight)), tf.mul(bounds.low, back(s, pos.transposed))),
            tf.mul(bounds.high, back(s, neg.transposed)),
          );
        }
        case 'flat': {
          const count = this.forward(tf.onesLike(x), this.forwardWeight, undefined);
          return back(tf.div(r, tf.add(count, TINY)) as tf.Tensor4D, this.transposedWeight);
        }
      }
    });
  }

  dispose(): void {
    tf.dispose(this.owned);
  }

  private forward(x: tf.Tensor4D, w: tf.Tensor4D, b: tf.Tensor1D | undefined): tf.Tensor4D {
    const { stride, padding } = this.geometry;
    const y = tf.conv2d(x, w, stride, padding);
    return b ? tf.add(y, b) : y;
  }

  /** The adjoint of the forward convolution, as a forward convolution (see class comment). */
  private transposeConv(s: tf.Tensor4D, transposed: tf.Tensor4D, inputShape: number[]): tf.Tensor4D {
    const { kernel, stride, padding } = this.geometry;
    if (stride === 1 && (padding === 'same' || kernel === 1)) return tf.conv2d(s, transposed, 1, padding);
    const [, height = 0, width = 0] = inputShape;
    const dilated = dilate(s, stride);
    const extraH = height - ((s.shape[1] - 1) * stride + kernel);
    const extraW = width - ((s.shape[2] - 1) * stride + kernel);
    const padded = tf.pad(dilated, [
      [0, 0],
      [kernel - 1, kernel - 1 + extraH],
      [kernel - 1, kernel - 1 + extraW],
      [0, 0],
    ]);
    return tf.conv2d(padded, transposed, 1, 'valid');
  }
}

/** HWIO filter -> the filter of its adjoint: rotated by 180 degrees, input and output channels swapped. */
export function flipTranspose(w: tf.Tensor4D): tf.Tensor4D {
  return tf.tidy(() => tf.transpose(tf.reverse(w, [0, 1]), [0, 1, 3, 2]));
}

/** Inserts stride - 1 zeros between rows and columns: the adjoint of striding. */
export function dilate(s: tf.Tensor4D, stride: number): tf.Tensor4D {
  if (stride === 1) return s;
  const [n, h, w, c] = s.shape;
  const spread = tf.pad(tf.reshape(s, [n, h, 1, w, 1, c]), [
    [0, 0],
    [0, 0],
    [0, stride - 1],
    [0, 0],
    [0, stride - 1],
    [0, 0],
  ]);
  return tf.slice(tf.reshape(spread, [n, h * stride, w * stride, c]), [0, 0, 0, 0], [n, (h - 1) * stride + 1, (w - 1) * stride + 1, c]) as tf.Tensor4D;
}
