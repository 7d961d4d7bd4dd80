import * as tf from '@tensorflow/tfjs';
import type { AffineNorm, DenseNet } from '../inference/densenet.js';
import type { PreprocessingSpec } from '../inference/preprocessing-spec.js';
import { convRule, lrpOptionsSchema, type LrpOptions } from './composites.js';
import { ConvRelevance, stabilise, type ConvRecord } from './conv-relevance.js';
import { averagePoolRelevance, maxPoolRelevance } from './layer-relevance.js';

export type ExplainTarget = 'predicted' | 'all' | number | string;

export interface Explanation {
  /** Index and name of the explained class. */
  targetIndex: number;
  targetClass: string;
  /** The explained score: the logit of the target class, which is where relevance starts. */
  logit: number;
  /** Relevance per input pixel (summed over channels), row-major, inputSize x inputSize. */
  relevance: Float32Array;
  size: number;
  relevanceSum: number;
  /** (logit - relevanceSum) / logit: the share biases and stabilisers absorbed on the way down. */
  absorbedShare: number;
  composite: LrpOptions['composite'];
  parameters: Omit<LrpOptions, 'composite'>;
}

interface DenseLayerLrp {
  norm1: AffineNorm;
  conv1: ConvRelevance; // conv1 fused with norm2
  conv1Weight: tf.Tensor4D;
  conv1Bias: tf.Tensor1D;
  conv2: ConvRelevance;
  conv2Weight: tf.Tensor4D;
}

interface TransitionLrp {
  norm: AffineNorm;
  conv: ConvRelevance;
  weight: tf.Tensor4D;
}

/**
 * What one dense layer's forward pass keeps for the backward one. `gate` folds the layer's BatchNorm
 * epsilon step and its ReLU into one factor over the layer's input channels: with t = x * scale,
 * y = t + offset and a = relu(y), the relevance of x is t * R_a / stab(y), and R_a = a * c for the signal c
 * of the convolution after it, so R_x = c * gate with gate = t * a / (a + epsilon) (zero where y <= 0).
 */
type DenseLayerState = {
  gate: tf.Tensor4D;
  conv1: ConvRecord;
  /** relu(z1): conv2's input. */
  hidden: tf.Tensor4D;
  conv2: ConvRecord;
};

type TransitionState = {
  gate: tf.Tensor4D;
  conv: ConvRecord;
  /** The convolution's output and its 2x2 average pool. */
  convOutput: tf.Tensor4D;
  pooled: tf.Tensor4D;
};

/** What the forward pass keeps for the backward one; everything else it frees as it goes. */
interface ForwardState {
  paddedInput: tf.Tensor4D;
  stemZ: tf.Tensor4D;
  poolInput: tf.Tensor4D;
  pooled: tf.Tensor4D;
  layers: DenseLayerState[][];
  transitions: TransitionState[];
  /** norm5's gate (see DenseLayerState) over the last block's output, and the global pool's input size. */
  finalGate: tf.Tensor4D;
  finalArea: number;
  pooledFeatures: tf.Tensor2D;
  logits: tf.Tensor2D;
}

interface StemBounds {
  low: tf.Tensor4D;
  high: tf.Tensor4D;
  offset: tf.Tensor4D;
}

/**
 * Layer-wise Relevance Propagation for a torchvision DenseNet, on TensorFlow.js ops only.
 *
 * BatchNorm is folded at construction: into the convolution before it where one exists (norm0 into
 * conv0, norm2 into conv1), and otherwise kept as a per-channel affine step with the epsilon rule
 * (norm1 of every dense layer, the transitions' norm and norm5 follow a concatenation of several
 * producers). Concatenation needs no rule: relevance is summed per channel slice, layer by layer
 * in reverse.
 */
export class DenseNetLrp {
  readonly options: LrpOptions;
  private readonly owned: tf.Tensor[] = [];
  private readonly stem: ConvRelevance;
  private readonly stemWeight: tf.Tensor4D;
  private readonly stemBias: tf.Tensor1D;
  private readonly layers: DenseLayerLrp[][];
  private readonly transitions: TransitionLrp[];
  private readonly low: tf.Tensor1D;
  private readonly high: tf.Tensor1D;
  /** z^B's bounds and their part of the stem's denominator, per input size (a batch of one, broadcast). */
  private readonly stemBounds = new Map<number, StemBounds>();

  constructor(
    private readonly network: DenseNet,
    private readonly classes: readonly string[],
    preprocessing: Pick<PreprocessingSpec, 'mean' | 'std'>,
    options: Partial<LrpOptions> = {},
  ) {
    this.options = lrpOptionsSchema.parse(options);
    const o = this.options;
    const keep = <T extends tf.Tensor>(t: T): T => {
      this.owned.push(t);
      return t;
    };
    const p = network.params;
    this.stemWeight = keep(tf.mul(p.conv0, p.norm0.scale) as tf.Tensor4D);
    this.stemBias = p.norm0.offset;
    this.stem = new ConvRelevance(this.stemWeight, this.stemBias, { kernel: 7, stride: 2, padding: 'valid' }, convRule(o, { kind: 'stem' }), o.epsilon);
    this.layers = p.blocks.map((layers, block) =>
      layers.map((layer) => {
        const rule = convRule(o, { kind: 'dense-layer', block });
        const conv1Weight = keep(tf.mul(layer.conv1, layer.norm2.scale) as tf.Tensor4D);
        return {
          norm1: layer.norm1,
          conv1Weight,
          conv1Bias: layer.norm2.offset,
          conv1: new ConvRelevance(conv1Weight, layer.norm2.offset, { kernel: 1, stride: 1, padding: 'valid' }, rule, o.epsilon),
          conv2Weight: layer.conv2,
          conv2: new ConvRelevance(layer.conv2, undefined, { kernel: 3, stride: 1, padding: 'same' }, rule, o.epsilon),
        };
      }),
    );
    this.transitions = p.transitions.map((t, index) => ({
      norm: t.norm,
      weight: t.conv,
      conv: new ConvRelevance(t.conv, undefined, { kernel: 1, stride: 1, padding: 'valid' }, convRule(o, { kind: 'transition', index }), o.epsilon),
    }));
    const channels = 3;
    const mean = Array.from({ length: channels }, (_, i) => preprocessing.mean[i] ?? preprocessing.mean[0] ?? 0);
    const std = Array.from({ length: channels }, (_, i) => preprocessing.std[i] ?? preprocessing.std[0] ?? 1);
    const low = o.inputBounds?.low ?? mean.map((m, i) => (0 - m) / (std[i] ?? 1));
    const high = o.inputBounds?.high ?? mean.map((m, i) => (1 - m) / (std[i] ?? 1));
    this.low = keep(tf.tensor1d(low));
    this.high = keep(tf.tensor1d(high));
  }

  /**
   * Explains each image of a batch (NHWC, preprocessed). `target`: the predicted class (default), a class
   * index or name, or `all` (one explanation per class). Returns one list of explanations per image.
   */
  async explain(input: tf.Tensor4D, target: ExplainTarget = 'predicted'): Promise<Explanation[][]> {
    const batch = input.shape[0];
    const size = input.shape[1];
    const computed = tf.tidy(() => {
      const state = this.forward(input);
      const predicted = tf.argMax(state.logits, 1);
      const targets: Array<tf.Tensor1D> = [];
      if (target === 'all') for (let c = 0; c < this.classes.length; c += 1) targets.push(tf.fill([batch], c, 'int32') as tf.Tensor1D);
      else if (target === 'predicted') targets.push(predicted as tf.Tensor1D);
      else targets.push(tf.fill([batch], this.classIndex(target), 'int32') as tf.Tensor1D);
      return {
        logits: state.logits,
        runs: targets.map((t) => ({ target: t, maps: this.backward(state, t) })),
      };
    });
    const logits = await computed.logits.data();
    const explanations: Explanation[][] = Array.from({ length: batch }, () => []);
    const { composite, ...parameters } = this.options;
    for (const run of computed.runs) {
      const [targets, maps] = await Promise.all([run.target.data(), run.maps.data()]);
      for (let i = 0; i < batch; i += 1) {
        const t = targets[i] ?? 0;
        const relevance = (maps as Float32Array).slice(i * size * size, (i + 1) * size * size);
        const relevanceSum = relevance.reduce((a, b) => a + b, 0);
        const logit = logits[i * this.classes.length + t] ?? 0;
        explanations[i]?.push({
          targetIndex: t,
          targetClass: this.classes[t] ?? String(t),
          logit,
          relevance,
          size,
          relevanceSum,
          absorbedShare: logit === 0 ? 0 : (logit - relevanceSum) / logit,
          composite,
          parameters,
        });
      }
    }
    tf.dispose([computed.logits, ...computed.runs.flatMap((r) => [r.target, r.maps])]);
    return explanations;
  }

  dispose(): void {
    this.stem.dispose();
    for (const l of this.layers.flat()) {
      l.conv1.dispose();
      l.conv2.dispose();
    }
    for (const t of this.transitions) t.conv.dispose();
    for (const b of this.stemBounds.values()) tf.dispose([b.low, b.high, b.offset]);
    this.stemBounds.clear();
    tf.dispose(this.owned);
  }

  private classIndex(target: number | string): number {
    const index = typeof target === 'number' ? target : this.classes.indexOf(target);
    if (!Number.isInteger(index) || index < 0 || index >= this.classes.length) {
      throw new Error(`cannot explain class '${target}': the model's classes are ${this.classes.join(', ')}`);
    }
    return index;
  }

  private forward(input: tf.Tensor4D): ForwardState {
    const p = this.network.params;
    const gateEpsilon = this.gateEpsilon();
    const gate = (t: tf.Tensor, a: tf.Tensor) => tf.div(tf.mul(t, a), tf.add(a, gateEpsilon)) as tf.Tensor4D;
    const stem = tf.tidy(() => {
      const paddedInput = tf.pad(input, [
        [0, 0],
        [3, 3],
        [3, 3],
        [0, 0],
      ]);
      const stemZ = tf.add(tf.conv2d(paddedInput, this.stemWeight, 2, 'valid'), this.stemBias) as tf.Tensor4D;
      const poolInput = tf.pad(tf.relu(stemZ), [
        [0, 0],
        [1, 1],
        [1, 1],
        [0, 0],
      ]);
      return { paddedInput, stemZ, poolInput, pooled: tf.maxPool(poolInput, 3, 2, 'valid') };
    });
    const layerStates: DenseLayerState[][] = [];
    const transitionStates: TransitionState[] = [];
    let x: tf.Tensor4D = stem.pooled;
    let lastOutput: tf.Tensor4D | undefined;
    this.layers.forEach((layers, b) => {
      const maps: tf.Tensor4D[] = [x];
      const states: DenseLayerState[] = [];
      for (const layer of layers) {
        const step = tf.tidy(() => {
          const xin = maps.length === 1 ? x : tf.concat(maps, 3);
          const t = tf.mul(xin, layer.norm1.scale);
          const a1 = tf.relu(tf.add(t, layer.norm1.offset)) as tf.Tensor4D;
          const z1 = tf.add(tf.conv2d(a1, layer.conv1Weight, 1, 'valid'), layer.conv1Bias) as tf.Tensor4D;
          const hidden = tf.relu(z1) as tf.Tensor4D;
          const h = tf.conv2d(hidden, layer.conv2Weight, 1, 'same');
          const state: DenseLayerState = { gate: gate(t, a1), conv1: layer.conv1.record(a1, z1), hidden, conv2: layer.conv2.record(hidden, h) };
          return { state, h };
        });
        states.push(step.state);
        maps.push(step.h);
      }
      layerStates.push(states);
      const transition = this.transitions[b];
      if (transition) {
        const step = tf.tidy(() => {
          const blockOutput = tf.concat(maps, 3);
          const t = tf.mul(blockOutput, transition.norm.scale);
          const a = tf.relu(tf.add(t, transition.norm.offset)) as tf.Tensor4D;
          const convOutput = tf.conv2d(a, transition.weight, 1, 'valid');
          const state: TransitionState = { gate: gate(t, a), conv: transition.conv.record(a, convOutput), convOutput, pooled: tf.avgPool(convOutput, 2, 2, 'valid') };
          return state;
        });
        transitionStates.push(step);
        x = step.pooled;
      } else {
        x = tf.concat(maps, 3);
        lastOutput = x;
      }
    });
    const head = tf.tidy(() => {
      const t = tf.mul(x, p.norm5.scale);
      const a = tf.relu(tf.add(t, p.norm5.offset));
      const pooledFeatures = tf.mean(a, [1, 2]) as tf.Tensor2D;
      const logits = tf.add(tf.matMul(pooledFeatures, p.classifierWeight), p.classifierBias) as tf.Tensor2D;
      return { finalGate: gate(t, a), pooledFeatures, logits };
    });
    const finalArea = x.shape[1] * x.shape[2];
    // Only norm5's gate needs the last block's output, which is the largest tensor of the pass.
    lastOutput?.dispose();
    return { ...stem, layers: layerStates, transitions: transitionStates, finalArea, ...head };
  }

  /** Relevance maps [batch, H, W] (summed over input channels) for one target class per image. */
  private backward(state: ForwardState, target: tf.Tensor1D): tf.Tensor3D {
    const eps = this.options.epsilon;
    const p = this.network.params;
    const classes = this.classes.length;
    // Start: the target logit itself, then the epsilon rule through the classifier, the global pool and
    // norm5 (folded into its gate).
    let r = tf.tidy(() => {
      const start = tf.mul(tf.oneHot(target, classes), state.logits);
      const s = tf.div(start, stabilise(state.logits, eps));
      const rPooled = tf.mul(state.pooledFeatures, tf.matMul(s, p.classifierWeight, false, true));
      const [n = 0, c = 0] = rPooled.shape;
      const signal = tf.reshape(tf.div(rPooled, tf.mul(stabilise(state.pooledFeatures, eps), state.finalArea)), [n, 1, 1, c]);
      return tf.mul(state.finalGate, signal) as tf.Tensor4D;
    });
    const growth = this.network.architecture.growthRate;
    for (let b = this.layers.length - 1; b >= 0; b -= 1) {
      const layers = this.layers[b] as DenseLayerLrp[];
      const states = state.layers[b] as DenseLayerState[];
      // acc: the relevance of the channels that exist before the layer being undone (its input and its
      // output); undoing it leaves its input's channels, plus what it passed down to them.
      let acc = r;
      for (let l = layers.length - 1; l >= 0; l -= 1) {
        const layer = layers[l] as DenseLayerLrp;
        const s = states[l] as DenseLayerState;
        const next = tf.tidy(() => {
          const [n, h, w, total] = acc.shape;
          const cin = total - growth;
          const rH = tf.slice(acc, [0, 0, 0, cin], [n, h, w, growth]);
          const rHidden = tf.mul(s.hidden, layer.conv2.signal(s.conv2, rH, s.hidden.shape)) as tf.Tensor4D;
          const c1 = layer.conv1.signal(s.conv1, rHidden, s.gate.shape);
          return tf.add(tf.slice(acc, [0, 0, 0, 0], [n, h, w, cin]), tf.mul(s.gate, c1)) as tf.Tensor4D;
        });
        acc.dispose();
        acc = next;
      }
      if (b === 0) {
        r = acc;
        break;
      }
      // The block input came from transition b-1: average pool, its convolution, its norm.
      const transition = this.transitions[b - 1] as TransitionLrp;
      const ts = state.transitions[b - 1] as TransitionState;
      const rBlockInput = acc;
      r = tf.tidy(() => {
        const rConv = averagePoolRelevance(ts.convOutput, ts.pooled, rBlockInput, eps);
        return tf.mul(ts.gate, transition.conv.signal(ts.conv, rConv, ts.gate.shape)) as tf.Tensor4D;
      });
      rBlockInput.dispose();
    }
    const rBlock1 = r;
    return tf.tidy(() => {
      const rPoolInput = maxPoolRelevance(state.poolInput, state.pooled, rBlock1, 3, 2);
      const [n, ph, pw, c] = rPoolInput.shape;
      const rStem = tf.slice(rPoolInput, [0, 1, 1, 0], [n, ph - 2, pw - 2, c]);
      const bounds = this.stem.rule.kind === 'z-box' ? this.boundsFor(state.paddedInput) : undefined;
      const rPadded = this.stem.backward(state.paddedInput, rStem, state.stemZ, bounds);
      const [, hh, ww, cc] = rPadded.shape;
      const rInput = tf.slice(rPadded, [0, 3, 3, 0], [n, hh - 6, ww - 6, cc]);
      return tf.sum(rInput, 3) as tf.Tensor3D;
    });
  }

  /**
   * The gates' stabiliser: epsilon, kept just above zero for LRP-0 (epsilon = 0), where a / (a + 0) would
   * make 0 / 0 at every switched-off unit instead of 0.
   */
  private gateEpsilon(): number {
    return Math.max(this.options.epsilon, 1e-30);
  }

  /**
   * z^B's lowest/highest input images (the channel bounds inside the image, zero in the stem padding) and
   * their share of the stem's denominator, made once per input size as a batch of one.
   */
  private boundsFor(padded: tf.Tensor4D): StemBounds {
    const [, h, w, c] = padded.shape;
    const cached = this.stemBounds.get(h * 100000 + w);
    if (cached) return cached;
    const made = tf.tidy(() => {
      const inside = tf.pad(tf.ones([1, h - 6, w - 6, c]), [
        [0, 0],
        [3, 3],
        [3, 3],
        [0, 0],
      ]);
      const low = tf.mul(inside, this.low) as tf.Tensor4D;
      const high = tf.mul(inside, this.high) as tf.Tensor4D;
      return { low, high, offset: this.stem.boxOffset(low, high) };
    });
    tf.keep(made.low);
    tf.keep(made.high);
    tf.keep(made.offset);
    this.stemBounds.set(h * 100000 + w, made);
    return made;
  }
}
