import * as tf from '@tensorflow/tfjs';
import { concatChannels, sliceChannels } from '../inference/channel-ops.js';
import type { ConvRule } from './composites.js';
import { GatewayError } from '../errors.js';

export interface ConvGeometry {
  kernel: number;
  stride: number;
  padding: 'same' | 'valid';
}

// Rules other than epsilon only need their denominators kept off zero (Zennit uses the same order).
const TINY = 1e-6;

/**
 * The least stabiliser any epsilon step uses. With epsilon 0 (LRP-0, which the configuration accepts), a unit
 * whose z is exactly 0 (a dead channel's pooled feature, a switched-off convolution output) would divide its
 * relevance, itself 0, by 0 and spread NaN over the whole map; with the floor the quotient is 0, as the
 * gradient's is. Far below any real |z| in float32 and still a normal number (the smallest is 1.2e-38).
 */
export const STABILISER_FLOOR = 1e-30;

/**
 * z + e * sign(z) with e = max(epsilon, STABILISER_FLOOR) and sign(0) = +1, so a zero pre-activation never
 * divides, whatever epsilon is.
 */
export function stabilise(z: tf.Tensor, epsilon: number): tf.Tensor {
  const e = Math.max(epsilon, STABILISER_FLOOR);
  return tf.where(tf.greaterEqual(z, 0), tf.add(z, e), tf.sub(z, e));
}

/** The lowest and highest value each input channel can take (z^B), one entry per channel. */
export interface ChannelBounds {
  low: tf.Tensor1D;
  high: tf.Tensor1D;
}

/**
 * What a rule keeps of one forward pass through its convolution, so that the backward step needs
 * neither the layer's input nor a second forward convolution. Made by `record` inside the forward pass.
 */
export type ConvRecord =
  | { kind: 'z'; z: tf.Tensor4D }
  /** alpha-beta: the positive and negative parts of z, biases left out. */
  | { kind: 'split'; positive: tf.Tensor4D; negative: tf.Tensor4D };

/**
 * The adjoint of a convolution, computed as a forward convolution (the gradient kernels
 * Conv2DBackpropInput/Filter are missing or slow on the wasm backend):
 * - stride 1: the filter rotated by 180 degrees with input and output channels swapped;
 * - stride s > 1: a polyphase filter. Each of the s x s output phases is a stride-1 convolution of the
 *   undilated relevance with every s-th tap of the filter, so all phases are one convolution with s*s times
 *   the channels, put in place by a depth-to-space shuffle (phasesToSpace). The textbook alternative (dilate the relevance with zeros,
 *   then convolve) spends (s*s - 1) / (s*s) of its multiplications on those zeros.
 */
export class ConvAdjoint {
  readonly filter: tf.Tensor4D;
  private readonly inputChannels: number;
  private readonly taps: number;

  /** `weight`: the forward filter, HWIO. */
  constructor(
    weight: tf.Tensor4D,
    private readonly geometry: ConvGeometry,
  ) {
    const { kernel, stride, padding } = geometry;
    if (stride > 1 && padding !== 'valid')
      throw new GatewayError(
        'INTERNAL',
        `the adjoint of a strided convolution needs 'valid' padding (pad the input first), not '${padding}'`,
      );
    this.inputChannels = weight.shape[2];
    this.taps = Math.ceil(kernel / stride);
    this.filter = stride === 1 ? flipTranspose(weight) : polyphaseFilter(weight, stride);
  }

  /** The adjoint applied to `s` (shaped like the convolution's output), shaped like the convolution's input. */
  apply(s: tf.Tensor4D, inputShape: readonly number[]): tf.Tensor4D {
    const { stride, padding } = this.geometry;
    if (stride === 1) return tf.conv2d(s, this.filter, 1, padding);
    const k = this.taps - 1;
    const phases = tf.conv2d(
      tf.pad(s, [
        [0, 0],
        [k, k],
        [k, k],
        [0, 0],
      ]),
      this.filter,
      1,
      'valid',
    );
    const full = phasesToSpace(phases, stride, this.inputChannels);
    const [n, fullH, fullW] = full.shape;
    const [, height = 0, width = 0] = inputShape;
    // The phases cover stride * (outputs + taps - 1) rows; a valid convolution may have dropped up to
    // stride - 1 trailing input rows, which get no relevance.
    const cropped = tf.slice(
      full,
      [0, 0, 0, 0],
      [n, Math.min(height, fullH), Math.min(width, fullW), this.inputChannels],
    );
    if (height <= fullH && width <= fullW) return cropped;
    return tf.pad(cropped, [
      [0, 0],
      [0, Math.max(0, height - fullH)],
      [0, Math.max(0, width - fullW)],
      [0, 0],
    ]);
  }

  dispose(): void {
    this.filter.dispose();
  }
}

/**
 * One convolution's LRP step under one rule, with the filters each rule needs prepared once.
 *
 * For the rules whose input relevance is the input times something (epsilon, gamma, alpha-beta), the
 * backward step returns that something, the *signal* c with R_x = x * c, so the caller can fold the
 * multiplication by x into whatever it multiplies next (DenseNetLrp folds it into the BatchNorm step).
 */
export class ConvRelevance {
  private readonly owned: tf.Tensor[] = [];
  private readonly adjoints: ConvAdjoint[] = [];
  /** Filter (and bias) the rule weighs contributions by: w, or w + gamma w+ for gamma. */
  private readonly ruleWeight: tf.Tensor4D;
  private readonly ruleBias: tf.Tensor1D | undefined;
  private readonly ruleAdjoint: ConvAdjoint;
  /** alpha-beta and z^B: w+ for the positive part of z. */
  private readonly positiveWeight?: tf.Tensor4D;
  private readonly negativeWeight?: tf.Tensor4D;
  /** alpha-beta: the adjoint of [w+ | w-] stacked on output channels, both halves in one convolution. */
  private readonly splitAdjoint?: ConvAdjoint;
  /** alpha-beta with beta = 0: the adjoint of w+ alone. */
  private readonly positiveAdjoint?: ConvAdjoint;
  /** z^B: the adjoint of [w, l w+ + h w-] stacked on input channels (see the constructor). */
  private readonly boxAdjoint?: ConvAdjoint;
  private readonly channelBounds?: ChannelBounds;

  /** `channelBounds`: z^B's lowest and highest value of each input channel (required for z^B only). */
  constructor(
    private readonly weight: tf.Tensor4D,
    private readonly bias: tf.Tensor1D | undefined,
    private readonly geometry: ConvGeometry,
    readonly rule: ConvRule,
    private readonly epsilon: number,
    channelBounds?: ChannelBounds,
  ) {
    const keep = <T extends tf.Tensor>(t: T): T => {
      this.owned.push(t);
      return t;
    };
    const adjoint = (w: tf.Tensor4D, disposeWeight = false) => {
      const a = new ConvAdjoint(w, geometry);
      this.adjoints.push(a);
      if (disposeWeight) w.dispose();
      return a;
    };
    switch (rule.kind) {
      case 'gamma': {
        // Gamma favours positive contributions: w + gamma * w+ (and the same for the bias).
        this.ruleWeight = keep(tf.add(weight, tf.mul(tf.relu(weight), rule.gamma)));
        this.ruleBias = bias ? keep(tf.add(bias, tf.mul(tf.relu(bias), rule.gamma)) as tf.Tensor1D) : undefined;
        break;
      }
      case 'flat':
        this.ruleWeight = keep(tf.onesLike(weight));
        this.ruleBias = undefined;
        break;
      default:
        this.ruleWeight = weight;
        this.ruleBias = bias;
    }
    this.ruleAdjoint = adjoint(this.ruleWeight);
    if (rule.kind === 'alpha-beta' || rule.kind === 'z-box') {
      const positive = keep(tf.relu(weight));
      const negative = keep(tf.neg(tf.relu(tf.neg(weight))));
      this.positiveWeight = positive;
      this.negativeWeight = negative;
      if (rule.kind === 'z-box') {
        if (!channelBounds)
          throw new GatewayError('INTERNAL', 'the z-box rule needs the lowest and highest value of each input channel');
        this.channelBounds = channelBounds;
        // R = x adj(w)(s) - l adj(w+)(s) - h adj(w-)(s). With l and h the same at every pixel, the last two
        // terms are one adjoint, of l w+ + h w- (input channels scaled by their bounds): two adjoints, not three.
        const perChannel = (t: tf.Tensor1D) => tf.reshape(t, [1, 1, -1, 1]);
        const bound = tf.tidy(() =>
          tf.add(tf.mul(positive, perChannel(channelBounds.low)), tf.mul(negative, perChannel(channelBounds.high))),
        );
        this.boxAdjoint = adjoint(tf.concat([weight, bound as tf.Tensor4D], 2), true);
        bound.dispose();
      } else {
        // beta = 0 needs w- only where a negative consumer scale swaps the roles; the w+ adjoint alone is the fast path.
        if (rule.beta === 0) this.positiveAdjoint = adjoint(positive);
        this.splitAdjoint = adjoint(tf.concat([positive, negative], 3), true);
      }
    }
  }

  /**
   * What the backward step will need, from the forward pass: the layer's input `x` (after its ReLU) and
   * its output `z` (conv(x, w) + b). Epsilon keeps z; gamma convolves x with its own filter; alpha-beta
   * the positive part of z (one convolution with w+), the negative part being z - b minus it.
   */
  record(x: tf.Tensor4D, z: tf.Tensor4D): ConvRecord {
    switch (this.rule.kind) {
      case 'alpha-beta': {
        const positive = this.convolve(x, this.positiveWeight as tf.Tensor4D);
        const linear = this.bias ? tf.sub(z, this.bias) : z;
        return { kind: 'split', positive, negative: tf.sub(linear, positive) as tf.Tensor4D };
      }
      case 'gamma': {
        const zg = this.convolve(x, this.ruleWeight);
        return { kind: 'z', z: this.ruleBias ? (tf.add(zg, this.ruleBias) as tf.Tensor4D) : zg };
      }
      default:
        return { kind: 'z', z };
    }
  }

  /**
   * The signal c with R_x = x * c, from the relevance `r` of the output and what `record` kept;
   * `inputShape` is the layer input's.
   */
  signal(record: ConvRecord, r: tf.Tensor4D, inputShape: readonly number[]): tf.Tensor4D {
    const rule = this.rule;
    switch (rule.kind) {
      case 'epsilon':
      case 'gamma': {
        if (record.kind !== 'z') throw new GatewayError('INTERNAL', `the ${rule.kind} rule needs the recorded output`);
        return this.ruleAdjoint.apply(tf.div(r, stabilise(record.z, this.epsilon)) as tf.Tensor4D, inputShape);
      }
      case 'alpha-beta':
        // Inputs here are ReLU outputs (never negative), so the positive part of z is conv(x, w+), the
        // negative part conv(x, w-). Biases stay out of both: the rule then conserves exactly.
        return this.signedSignal(record, r, undefined, inputShape);
      default:
        throw new GatewayError('INTERNAL', `the ${rule.kind} rule has no signal form: use backward()`);
    }
  }

  /** The rule filter's adjoint applied to a signal at the output: epsilon's step once r / stab(z) is known. */
  adjoint(s: tf.Tensor4D, inputShape: readonly number[]): tf.Tensor4D {
    return this.ruleAdjoint.apply(s, inputShape);
  }

  /**
   * Alpha-beta for this convolution fused with per-channel scales after it (BatchNorms of its consumers): a
   * positive scale keeps the roles of w+ and w-, a negative one swaps them, and the scale itself cancels out of
   * each ratio. `positive` / `negative`: the output relevance that came through positive / negative scales
   * (`negative` undefined when there was none). `zp` / `zn`: the recorded positive and negative parts of z.
   */
  private splitRatios(
    positive: tf.Tensor4D,
    negative: tf.Tensor4D | undefined,
    zp: tf.Tensor4D,
    zn: tf.Tensor4D,
  ): { sp: tf.Tensor4D; sn: tf.Tensor4D } {
    const rule = this.rule;
    if (rule.kind !== 'alpha-beta')
      throw new GatewayError('INTERNAL', `the ${rule.kind} rule has no positive and negative parts`);
    const forPositive = negative
      ? tf.sub(tf.mul(positive, rule.alpha), tf.mul(negative, rule.beta))
      : tf.mul(positive, rule.alpha);
    const forNegative = negative
      ? tf.sub(tf.mul(negative, rule.alpha), tf.mul(positive, rule.beta))
      : tf.mul(positive, -rule.beta);
    return {
      sp: tf.div(forPositive, tf.add(zp, TINY)) as tf.Tensor4D,
      sn: tf.div(forNegative, tf.sub(zn, TINY)) as tf.Tensor4D,
    };
  }

  /** adj(w+)(sp) + adj(w-)(sn) in one convolution. */
  private adjointOfSplit(sp: tf.Tensor4D, sn: tf.Tensor4D, inputShape: readonly number[]): tf.Tensor4D {
    if (this.splitAdjoint) return this.splitAdjoint.apply(concatChannels([sp, sn]), inputShape);
    throw new GatewayError('INTERNAL', `the ${this.rule.kind} rule has no positive and negative parts`);
  }

  /** The signal c with R_x = x * c for relevance that came through positive and negative consumer scales. */
  signedSignal(
    record: ConvRecord,
    positive: tf.Tensor4D,
    negative: tf.Tensor4D | undefined,
    inputShape: readonly number[],
  ): tf.Tensor4D {
    if (record.kind !== 'split')
      throw new GatewayError('INTERNAL', 'the alpha-beta rule needs the recorded positive and negative parts');
    const rule = this.rule;
    if (rule.kind === 'alpha-beta' && rule.beta === 0 && negative === undefined) {
      return (this.positiveAdjoint as ConvAdjoint).apply(
        tf.div(tf.mul(positive, rule.alpha), tf.add(record.positive, TINY)) as tf.Tensor4D,
        inputShape,
      );
    }
    const { sp, sn } = this.splitRatios(positive, negative, record.positive, record.negative);
    return this.adjointOfSplit(sp, sn, inputShape);
  }

  /**
   * Relevance of the input `x` from the relevance `r` of the output. `z` is the output the forward pass
   * computed (conv(x, w) + b). z^B: `boxOffset` is conv(low, w+) + conv(high, w-) for the lowest/highest
   * input images (from `boxOffset()`; a batch of one is broadcast), by default the channel bounds at every
   * pixel. Where those images are not the channel bounds (zero padding added around an image), the
   * denominators are right but the relevance of those pixels is not: the caller crops them off.
   */
  backward(x: tf.Tensor4D, r: tf.Tensor4D, z: tf.Tensor4D | undefined, boxOffset?: tf.Tensor4D): tf.Tensor4D {
    return tf.tidy(() => {
      const rule = this.rule;
      const output =
        z ?? (this.bias ? tf.add(this.convolve(x, this.weight), this.bias) : this.convolve(x, this.weight));
      switch (rule.kind) {
        case 'epsilon':
        case 'gamma':
        case 'alpha-beta':
          return tf.mul(x, this.signal(this.record(x, output as tf.Tensor4D), r, x.shape));
        case 'z-box': {
          const bounds = this.channelBounds as ChannelBounds;
          const offset =
            boxOffset ??
            this.boxOffset(
              tf.mul(tf.onesLike(x), bounds.low) as tf.Tensor4D,
              tf.mul(tf.onesLike(x), bounds.high) as tf.Tensor4D,
            );
          const linear = this.bias ? tf.sub(output, this.bias) : output;
          const s = tf.div(r, stabilise(tf.sub(linear, offset), TINY)) as tf.Tensor4D;
          // One convolution gives both adjoints, [adj(w)(s), adj(l w+ + h w-)(s)].
          const g = this.boxAdjoint?.apply(s, x.shape) as tf.Tensor4D;
          const c = x.shape[3];
          return tf.sub(tf.mul(x, sliceChannels(g, 0, c)), sliceChannels(g, c, c)) as tf.Tensor4D;
        }
        case 'flat': {
          const count = this.convolve(tf.onesLike(x), this.ruleWeight);
          return this.ruleAdjoint.apply(tf.div(r, tf.add(count, TINY)) as tf.Tensor4D, x.shape);
        }
      }
    });
  }

  /** conv(low, w+) + conv(high, w-): the part of z^B's denominator that depends on the bounds alone. */
  boxOffset(low: tf.Tensor4D, high: tf.Tensor4D): tf.Tensor4D {
    if (!this.positiveWeight || !this.negativeWeight) throw new GatewayError('INTERNAL', 'only z^B has a box offset');
    const positive = this.positiveWeight;
    const negative = this.negativeWeight;
    return tf.tidy(() => tf.add(this.convolve(low, positive), this.convolve(high, negative)));
  }

  dispose(): void {
    for (const a of this.adjoints) a.dispose();
    tf.dispose(this.owned);
  }

  private convolve(x: tf.Tensor4D, w: tf.Tensor4D): tf.Tensor4D {
    const { stride, padding } = this.geometry;
    return tf.conv2d(x, w, stride, padding);
  }
}

/** HWIO filter -> the filter of its adjoint: rotated by 180 degrees, input and output channels swapped. */
export function flipTranspose(w: tf.Tensor4D): tf.Tensor4D {
  return tf.tidy(() => tf.transpose(tf.reverse(w, [0, 1]), [0, 1, 3, 2]));
}

/**
 * The polyphase filter of a stride-s convolution's adjoint (see ConvAdjoint). In one dimension, with
 * K = ceil(k / s) taps per phase: g[s m + p] = sum_j r[m - j] w[s j + p]; as a correlation over r padded
 * by K - 1, tap a of phase p is w[s (K - 1 - a) + p] (zero past the kernel). Output channels are ordered
 * (phase row, phase column, input channel), which is the order depthToSpace reads.
 */
export function polyphaseFilter(w: tf.Tensor4D, stride: number): tf.Tensor4D {
  return tf.tidy(() => {
    const kernel = w.shape[0];
    const taps = Math.ceil(kernel / stride);
    const padded = tf.pad(w, [
      [0, taps * stride - kernel],
      [0, taps * stride - kernel],
      [0, 0],
      [0, 0],
    ]);
    const phases: tf.Tensor4D[] = [];
    for (let py = 0; py < stride; py += 1) {
      for (let px = 0; px < stride; px += 1) {
        const rows = tf.tensor1d(
          Array.from({ length: taps }, (_, a) => stride * (taps - 1 - a) + py),
          'int32',
        );
        const cols = tf.tensor1d(
          Array.from({ length: taps }, (_, a) => stride * (taps - 1 - a) + px),
          'int32',
        );
        phases.push(tf.transpose(tf.gather(tf.gather(padded, rows, 0), cols, 1), [0, 1, 3, 2]) as tf.Tensor4D);
      }
    }
    return tf.concat(phases, 3);
  });
}

/**
 * depthToSpace for channels ordered (phase row, phase column, channel), as a reshape and a rank-4 transpose:
 * the same result, and on the wasm backend about 8x faster than its DepthToSpace kernel (a per-element loop).
 */
export function phasesToSpace(phases: tf.Tensor4D, stride: number, channels: number): tf.Tensor4D {
  const [n, h, w] = phases.shape;
  // Rows of phase row py of input row y land on output row y * stride + py: [n*h, py, w, (px, c)].
  const rows = tf.transpose(tf.reshape(phases, [n * h, w, stride, stride * channels]), [0, 2, 1, 3]);
  return tf.reshape(rows, [n, h * stride, w * stride, channels]);
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
  return tf.slice(
    tf.reshape(spread, [n, h * stride, w * stride, c]),
    [0, 0, 0, 0],
    [n, (h - 1) * stride + 1, (w - 1) * stride + 1, c],
  ) as tf.Tensor4D;
}
