import * as tf from '@tensorflow/tfjs';
import { concatChannels, sliceChannels } from '../inference/channel-ops.js';
import type { AffineNorm, DenseNet } from '../inference/densenet.js';
import type { PreprocessingSpec } from '../imaging/preprocessing-spec.js';
import { convRule, lrpOptionsSchema, type LrpOptions } from './composites.js';
import { ConvRelevance, STABILISER_FLOOR, stabilise, type ConvRecord } from './conv-relevance.js';
import { assertFiniteRelevance } from './finite-relevance.js';
import { averagePoolRelevance, maxPoolRelevance, onHostBackend, spreadOverPoolWindows } from './layer-relevance.js';
import { GatewayError } from '../errors.js';
import { explainedClassIndex, makeExplanation, type ExplainTarget, type Explanation } from './explanation.js';

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
 * How relevance reaches a convolution through the BatchNorms that consume its output channels (norm1 of every
 * later layer of its block, the transition's or the final norm). The BatchNorms are fused into the convolution,
 * per consumer, as the seed author does, so each rule sees one linear layer:
 * - `signal` (epsilon, gamma): the epsilon step at the BatchNorm's output y sums, over consumers, the signal
 *   S = scale * R_y / stab(y) per channel; the producer's adjoint takes S directly (epsilon), or its relevance
 *   h * S (gamma);
 * - `relevance` (alpha-beta, and the stem's max pool when the first block uses alpha-beta): the scale cancels
 *   out of alpha-beta's ratios and biases stay out, so R_y passes to the producer unchanged; consumers with a
 *   negative scale swap the roles of w+ and w-, so their share is kept apart.
 */
type RelevanceMode = 'signal' | 'relevance';

/**
 * What a BatchNorm consumer keeps: with a = relu(y) and c the signal at a from the convolution after it,
 * R_y = a * c (`active`), and S gets scale * a / (a + epsilon) * c (`signalFactor`; a / stab(y) for y > 0,
 * zero where y <= 0). Each is kept only if a producer of the consumer's input channels needs it.
 */
type NormState = {
  active?: tf.Tensor4D;
  signalFactor?: tf.Tensor4D;
};

type DenseLayerState = {
  norm: NormState;
  conv1: ConvRecord;
  /** relu(z1): conv2's input. */
  hidden: tf.Tensor4D;
  /** conv2's output: the layer's new feature maps (the gamma rule weighs its signal by them). */
  output: tf.Tensor4D;
  conv2: ConvRecord;
};

type TransitionState = {
  norm: NormState;
  /**
   * Epsilon and alpha-beta see the convolution and the pool as one linear layer, recorded at the pooled size;
   * other rules see the convolution alone, recorded at its full size (`convOutput`).
   */
  conv: ConvRecord;
  convOutput?: tf.Tensor4D;
  /** The 2x2 average pool of the convolution's output: what the next block consumes. */
  pooled: tf.Tensor4D;
  /** The convolution's input size (the block's). */
  height: number;
  width: number;
};

/** What the forward pass keeps for the backward one; everything else it frees as it goes. */
interface ForwardState {
  paddedInput: tf.Tensor4D;
  stemZ: tf.Tensor4D;
  poolInput: tf.Tensor4D;
  pooled: tf.Tensor4D;
  layers: DenseLayerState[][];
  transitions: TransitionState[];
  /** norm5 over the last block's output, and the global pool's input size. */
  finalNorm: NormState;
  finalArea: number;
  pooledFeatures: tf.Tensor2D;
  logits: tf.Tensor2D;
}

/**
 * Relevance accumulated over a block's channels, from the consumers undone so far. Each accumulator holds
 * only the channels of its mode's range (BlockNeeds) among those that exist at that point.
 */
type Accumulated = {
  /** Sum of scale * R_y / stab(y): for `signal` producers. */
  signal?: tf.Tensor4D;
  /** Sum of R_y over all consumers, and over those with a negative scale: for `relevance` producers. */
  relevance?: tf.Tensor4D;
  negative?: tf.Tensor4D;
};

/** Channels [from, to) of a block (to = Infinity: up to the last one). */
interface ChannelRange {
  from: number;
  to: number;
}

const ALL_CHANNELS: ChannelRange = { from: 0, to: Number.POSITIVE_INFINITY };

/**
 * Which accumulators the channels of one block need, from the modes of their producers: a block whose input
 * producer and layers differ in mode (isnet's third block: an alpha-beta transition before epsilon layers)
 * accumulates relevance over the input channels only and the signal over the layers' channels only.
 */
interface BlockNeeds {
  signal?: ChannelRange;
  relevance?: ChannelRange;
  /** Some consumer in the block has a negative BatchNorm scale. */
  negative: boolean;
}

/** The part of `range` among channels [0, width): undefined when empty. */
function within(range: ChannelRange | undefined, width: number): { from: number; count: number } | undefined {
  if (!range) return undefined;
  const to = Math.min(range.to, width);
  return to > range.from ? { from: range.from, count: to - range.from } : undefined;
}

/** Channels `range` of `t`, whose channels are the block's [0, width); undefined when none. */
function channelsIn(t: tf.Tensor4D, range: ChannelRange | undefined, width = t.shape[3]): tf.Tensor4D | undefined {
  const part = within(range, width);
  if (!part) return undefined;
  return part.from === 0 && part.count === t.shape[3] ? t : sliceChannels(t, part.from, part.count);
}

/**
 * Layer-wise Relevance Propagation for a torchvision DenseNet, on TensorFlow.js ops only.
 *
 * BatchNorm is folded at construction into the convolution after it where one exists (norm0 into conv0,
 * norm2 into conv1). The others (norm1 of every dense layer, the transitions' norm and norm5) follow a
 * concatenation of several producers; each is fused into its producers per consumer (see RelevanceMode), so
 * concatenation needs no rule: what the consumers send back is summed per channel, layer by layer in reverse.
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
  /** z^B: the bounds' part of the stem's denominator, per input size (a batch of one, broadcast). */
  private readonly stemBoxOffsets = new Map<number, tf.Tensor4D>();
  /** Per block: which accumulators its channels need. */
  private readonly needs: BlockNeeds[];
  /** How the stem's max pool takes relevance from the first block's BatchNorms. */
  private readonly stemPoolMode: RelevanceMode;
  /** Per BatchNorm: 1 where its scale is negative (absent when none is). */
  private readonly negativeScales = new Map<AffineNorm, tf.Tensor1D>();

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
    this.layers = p.blocks.map((layers, block) =>
      layers.map((layer) => {
        const rule = convRule(o, { kind: 'dense-layer', block });
        const conv1Weight = keep(tf.mul(layer.conv1, layer.norm2.scale) as tf.Tensor4D);
        return {
          norm1: layer.norm1,
          conv1Weight,
          conv1Bias: layer.norm2.offset,
          conv1: new ConvRelevance(
            conv1Weight,
            layer.norm2.offset,
            { kernel: 1, stride: 1, padding: 'valid' },
            rule,
            o.epsilon,
          ),
          conv2Weight: layer.conv2,
          conv2: new ConvRelevance(layer.conv2, undefined, { kernel: 3, stride: 1, padding: 'same' }, rule, o.epsilon),
        };
      }),
    );
    this.transitions = p.transitions.map((t, index) => ({
      norm: t.norm,
      weight: t.conv,
      conv: new ConvRelevance(
        t.conv,
        undefined,
        { kernel: 1, stride: 1, padding: 'valid' },
        convRule(o, { kind: 'transition', index }),
        o.epsilon,
      ),
    }));
    const channels = 3;
    const mean = Array.from({ length: channels }, (_, i) => preprocessing.mean[i] ?? preprocessing.mean[0] ?? 0);
    const std = Array.from({ length: channels }, (_, i) => preprocessing.std[i] ?? preprocessing.std[0] ?? 1);
    const low = o.inputBounds?.low ?? mean.map((m, i) => (0 - m) / (std[i] ?? 1));
    const high = o.inputBounds?.high ?? mean.map((m, i) => (1 - m) / (std[i] ?? 1));
    this.low = keep(tf.tensor1d(low));
    this.high = keep(tf.tensor1d(high));
    this.stem = new ConvRelevance(
      this.stemWeight,
      this.stemBias,
      { kernel: 7, stride: 2, padding: 'valid' },
      convRule(o, { kind: 'stem' }),
      o.epsilon,
      { low: this.low, high: this.high },
    );

    const modeOf = (c: ConvRelevance): RelevanceMode => (c.rule.kind === 'alpha-beta' ? 'relevance' : 'signal');
    const firstBlock = this.layers[0]?.[0];
    this.stemPoolMode = firstBlock ? modeOf(firstBlock.conv2) : 'signal';
    // On a GPU backend the scales cannot be read back synchronously: every mask is kept (exact, a little slower).
    const host = onHostBackend();
    const negativeOf = (norm: AffineNorm): boolean => {
      const mask = tf.tidy(() => tf.cast(tf.less(norm.scale, 0), 'float32') as tf.Tensor1D);
      if (!host || mask.dataSync().some((v) => v > 0)) {
        this.negativeScales.set(norm, keep(mask));
        return true;
      }
      mask.dispose();
      return false;
    };
    this.needs = this.layers.map((layers, b) => {
      const modes = layers.map((l) => modeOf(l.conv2));
      const transitionBefore = this.transitions[b - 1];
      modes.push(b === 0 ? this.stemPoolMode : transitionBefore ? modeOf(transitionBefore.conv) : 'signal');
      // The consumers of this block's channels: its layers' norm1, then the transition's norm or norm5.
      const consumers = [...layers.map((l) => l.norm1), this.transitions[b]?.norm ?? p.norm5];
      const negative = consumers.map(negativeOf).some(Boolean);
      const inputMode = modes.pop() as RelevanceMode;
      const layerModes = new Set(modes);
      const layerMode = modes[0] ?? inputMode;
      const inputChannels = layers[0]?.norm1.scale.shape[0] ?? 0;
      if (layerModes.size > 1) return { signal: ALL_CHANNELS, relevance: ALL_CHANNELS, negative };
      if (layerMode === inputMode) return { [inputMode]: ALL_CHANNELS, negative };
      return {
        [inputMode]: { from: 0, to: inputChannels },
        [layerMode]: { from: inputChannels, to: Number.POSITIVE_INFINITY },
        negative,
      };
    });
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
      if (target === 'all')
        for (let c = 0; c < this.classes.length; c += 1) targets.push(tf.fill([batch], c, 'int32') as tf.Tensor1D);
      else if (target === 'predicted') targets.push(predicted as tf.Tensor1D);
      else targets.push(tf.fill([batch], explainedClassIndex(this.classes, target), 'int32') as tf.Tensor1D);
      return {
        logits: state.logits,
        runs: targets.map((t) => ({ target: t, maps: this.backward(state, t) })),
      };
    });
    const explanations: Explanation[][] = Array.from({ length: batch }, () => []);
    const { composite, ...parameters } = this.options;
    try {
      const logits = await computed.logits.data();
      for (const run of computed.runs) {
        const [targets, maps] = await Promise.all([run.target.data(), run.maps.data()]);
        for (let i = 0; i < batch; i += 1) {
          const t = targets[i] ?? 0;
          const relevance = (maps as Float32Array).slice(i * size * size, (i + 1) * size * size);
          const imageLogits = Array.from(logits.subarray(i * this.classes.length, (i + 1) * this.classes.length));
          const explanation = makeExplanation(this.classes, this.options, t, imageLogits, relevance, size);
          // The sum is finite when every value is; a sum that overflows is refused too (nothing to scale by).
          if (!Number.isFinite(explanation.relevanceSum)) {
            const what = `the ${composite} explanation (epsilon ${parameters.epsilon}) of class ${this.classes[t] ?? t} for image ${i} of the batch`;
            assertFiniteRelevance(relevance, what);
            throw new GatewayError('LRP_NOT_FINITE', `${what}: its relevance sums to ${explanation.relevanceSum}`);
          }
          explanations[i]?.push(explanation);
        }
      }
    } finally {
      tf.dispose([computed.logits, ...computed.runs.flatMap((r) => [r.target, r.maps])]);
    }
    return explanations;
  }

  dispose(): void {
    this.stem.dispose();
    for (const l of this.layers.flat()) {
      l.conv1.dispose();
      l.conv2.dispose();
    }
    for (const t of this.transitions) t.conv.dispose();
    tf.dispose([...this.stemBoxOffsets.values()]);
    this.stemBoxOffsets.clear();
    tf.dispose(this.owned);
  }

  private forward(input: tf.Tensor4D): ForwardState {
    const p = this.network.params;
    const normEpsilon = this.normEpsilon();
    /** What a consumer keeps (NormState) for the producers of its input channels. */
    const normState = (a: tf.Tensor4D, scale: tf.Tensor1D, needs: BlockNeeds): NormState => {
      const active = channelsIn(a, needs.relevance);
      const signalPart = within(needs.signal, a.shape[3]);
      const signalActive = channelsIn(a, needs.signal);
      const signalScale =
        signalPart && signalPart.count < scale.shape[0] ? tf.slice(scale, signalPart.from, signalPart.count) : scale;
      return {
        ...(active ? { active } : {}),
        ...(signalActive
          ? {
              signalFactor: tf.div(tf.mul(signalActive, signalScale), tf.add(signalActive, normEpsilon)) as tf.Tensor4D,
            }
          : {}),
      };
    };
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
      const needs = this.needs[b] as BlockNeeds;
      // The block's channels so far: its input, then each layer's output appended as it comes (one copy of the
      // block per layer; concatenating all earlier outputs again for every layer costs a call per piece and row).
      let features = x;
      const states: DenseLayerState[] = [];
      for (const layer of layers) {
        const xin = features;
        const state = tf.tidy(() => {
          const a1 = tf.relu(tf.add(tf.mul(xin, layer.norm1.scale), layer.norm1.offset)) as tf.Tensor4D;
          const z1 = tf.add(tf.conv2d(a1, layer.conv1Weight, 1, 'valid'), layer.conv1Bias) as tf.Tensor4D;
          const hidden = tf.relu(z1) as tf.Tensor4D;
          const output = tf.conv2d(hidden, layer.conv2Weight, 1, 'same');
          const s: DenseLayerState = {
            norm: normState(a1, layer.norm1.scale, needs),
            conv1: layer.conv1.record(a1, z1),
            hidden,
            output,
            conv2: layer.conv2.record(hidden, output),
          };
          return s;
        });
        states.push(state);
        features = concatChannels([xin, state.output]);
        if (xin !== x) xin.dispose();
      }
      layerStates.push(states);
      const transition = this.transitions[b];
      if (transition) {
        const blockOutput = features;
        const state = tf.tidy(() => {
          const a = tf.relu(tf.add(tf.mul(blockOutput, transition.norm.scale), transition.norm.offset)) as tf.Tensor4D;
          const [, height, width] = a.shape;
          const pool = (t: tf.Tensor4D) => tf.avgPool(t, 2, 2, 'valid');
          const norm = normState(a, transition.norm.scale, needs);
          if (poolsFirst(transition.conv)) {
            // A 1x1 convolution and an average pool commute: pooling first convolves a quarter of the pixels.
            const pooledInput = pool(a);
            const pooled = tf.conv2d(pooledInput, transition.weight, 1, 'valid');
            const s: TransitionState = {
              norm,
              conv: transition.conv.record(pooledInput, pooled),
              pooled,
              height,
              width,
            };
            return s;
          }
          const convOutput = tf.conv2d(a, transition.weight, 1, 'valid');
          const s: TransitionState = {
            norm,
            conv: transition.conv.record(a, convOutput),
            convOutput,
            pooled: pool(convOutput),
            height,
            width,
          };
          return s;
        });
        transitionStates.push(state);
        if (blockOutput !== x) blockOutput.dispose();
        x = state.pooled;
      } else {
        if (features !== x) lastOutput = features;
        x = features;
      }
    });
    const lastNeeds = this.needs[this.needs.length - 1] as BlockNeeds;
    const head = tf.tidy(() => {
      const a = tf.relu(tf.add(tf.mul(x, p.norm5.scale), p.norm5.offset));
      const pooledFeatures = tf.mean(a, [1, 2]) as tf.Tensor2D;
      const logits = tf.add(tf.matMul(pooledFeatures, p.classifierWeight), p.classifierBias) as tf.Tensor2D;
      return { finalNorm: normState(a as tf.Tensor4D, p.norm5.scale, lastNeeds), pooledFeatures, logits };
    });
    const finalArea = x.shape[1] * x.shape[2];
    // Only norm5 needed the last block's output, which is the largest tensor of the pass.
    lastOutput?.dispose();
    return { ...stem, layers: layerStates, transitions: transitionStates, finalArea, ...head };
  }

  /** Relevance maps [batch, H, W] (summed over input channels) for one target class per image. */
  private backward(state: ForwardState, target: tf.Tensor1D): tf.Tensor3D {
    const eps = this.options.epsilon;
    const p = this.network.params;
    const classes = this.classes.length;
    const blocks = this.layers.length;
    // Start: the target logit itself, then the epsilon rule through the classifier and the global pool, which
    // gives the signal at norm5's ReLU output.
    let acc = tf.tidy(() => {
      const start = tf.mul(tf.oneHot(target, classes), state.logits);
      const s = tf.div(start, stabilise(state.logits, eps));
      const rPooled = tf.mul(state.pooledFeatures, tf.matMul(s, p.classifierWeight, false, true));
      const [n = 0, c = 0] = rPooled.shape;
      const signal = tf.reshape(tf.div(rPooled, tf.mul(stabilise(state.pooledFeatures, eps), state.finalArea)), [
        n,
        1,
        1,
        c,
      ]) as tf.Tensor4D;
      return this.consume(undefined, state.finalNorm, p.norm5, signal, this.needs[blocks - 1] as BlockNeeds);
    });
    const growth = this.network.architecture.growthRate;
    let rBlock1: tf.Tensor4D | undefined;
    for (let b = blocks - 1; b >= 0; b -= 1) {
      const layers = this.layers[b] as DenseLayerLrp[];
      const states = state.layers[b] as DenseLayerState[];
      const needs = this.needs[b] as BlockNeeds;
      // acc covers the channels that exist before the layer being undone (its input and its output);
      // undoing it leaves its input's channels, plus what its norm1 sent back to them.
      for (let l = layers.length - 1; l >= 0; l -= 1) {
        const layer = layers[l] as DenseLayerLrp;
        const s = states[l] as DenseLayerState;
        const cin = layer.norm1.scale.shape[0];
        const previous = acc;
        acc = tf.tidy(() => {
          // An accumulator holds its range's channels from range.from on: the layer's own are at cin - from.
          const own = (t: tf.Tensor4D | undefined, range: ChannelRange | undefined) =>
            t && range && range.from <= cin && range.to >= cin + growth
              ? sliceChannels(t, cin - range.from, growth)
              : undefined;
          const rest = (t: tf.Tensor4D | undefined, range: ChannelRange | undefined) => {
            const part = t ? within(range, cin) : undefined;
            if (!t || !part) return undefined;
            return part.count === t.shape[3] ? t : sliceChannels(t, 0, part.count);
          };
          const c2 = this.producerSignal(
            layer.conv2,
            s.conv2,
            s.output,
            {
              signal: own(previous.signal, needs.signal),
              relevance: own(previous.relevance, needs.relevance),
              negative: own(previous.negative, needs.relevance),
            },
            s.hidden.shape,
          );
          const c1 = layer.conv1.signal(
            s.conv1,
            tf.mul(s.hidden, c2) as tf.Tensor4D,
            s.hidden.shape.slice(0, 3).concat(cin),
          );
          const kept = {
            signal: rest(previous.signal, needs.signal),
            relevance: rest(previous.relevance, needs.relevance),
            negative: rest(previous.negative, needs.relevance),
          };
          return this.consume(kept, s.norm, layer.norm1, c1, needs);
        });
        disposeAccumulated(previous, acc);
      }
      if (b === 0) {
        // The stem's max pool has one input per output, so there is no w+ / w- to swap: relevance passes as is.
        const a = acc;
        const r =
          this.stemPoolMode === 'relevance'
            ? (a.relevance as tf.Tensor4D)
            : (tf.mul(state.pooled, a.signal as tf.Tensor4D) as tf.Tensor4D);
        tf.dispose([a.signal, a.relevance, a.negative].filter((t): t is tf.Tensor4D => t !== undefined && t !== r));
        rBlock1 = r;
        break;
      }
      // The block input came from transition b-1 (its convolution and average pool); its norm consumed the
      // previous block's channels.
      const transition = this.transitions[b - 1] as TransitionLrp;
      const ts = state.transitions[b - 1] as TransitionState;
      const blockInput = acc;
      acc = tf.tidy(() => {
        const c = this.transitionSignal(transition, ts, blockInput);
        return this.consume(undefined, ts.norm, transition.norm, c, this.needs[b - 1] as BlockNeeds);
      });
      disposeAccumulated(blockInput, acc);
    }
    const rPooled = rBlock1 as tf.Tensor4D;
    return tf.tidy(() => {
      const rPoolInput = maxPoolRelevance(state.poolInput, state.pooled, rPooled, 3, 2);
      const [n, ph, pw, c] = rPoolInput.shape;
      const rStem = tf.slice(rPoolInput, [0, 1, 1, 0], [n, ph - 2, pw - 2, c]);
      const boxOffset = this.stem.rule.kind === 'z-box' ? this.stemBoxOffset(state.paddedInput) : undefined;
      const rPadded = this.stem.backward(state.paddedInput, rStem, state.stemZ, boxOffset);
      const [, hh, ww, cc] = rPadded.shape;
      const rInput = tf.slice(rPadded, [0, 3, 3, 0], [n, hh - 6, ww - 6, cc]);
      return tf.sum(rInput, 3) as tf.Tensor3D;
    });
  }

  /**
   * Adds what one BatchNorm consumer sends back to the channels it read, given the signal `c` at its ReLU
   * output: R_y = a * c to `relevance` (and to `negative` where its scale is negative), S += the signal factor
   * * c to `signal`, each over its range's channels. `base`: what earlier consumers sent to the same channels
   * (undefined for the first one).
   */
  private consume(
    base: Accumulated | undefined,
    norm: NormState,
    params: AffineNorm,
    c: tf.Tensor4D,
    needs: BlockNeeds,
  ): Accumulated {
    const add = (a: tf.Tensor4D | undefined, b: tf.Tensor4D) => (a ? (tf.add(a, b) as tf.Tensor4D) : b);
    const out: Accumulated = {};
    const forSignal = channelsIn(c, needs.signal);
    const signal = forSignal
      ? add(base?.signal, tf.mul(norm.signalFactor as tf.Tensor4D, forSignal) as tf.Tensor4D)
      : base?.signal;
    if (signal) out.signal = signal;
    const forRelevance = channelsIn(c, needs.relevance);
    if (forRelevance) {
      const r = tf.mul(norm.active as tf.Tensor4D, forRelevance) as tf.Tensor4D;
      out.relevance = add(base?.relevance, r);
      if (needs.negative) {
        const part = within(needs.relevance, c.shape[3]);
        const scales = this.negativeScales.get(params);
        const mask = scales && part && part.count < scales.shape[0] ? tf.slice(scales, part.from, part.count) : scales;
        const negative = mask ? (tf.mul(r, mask) as tf.Tensor4D) : undefined;
        out.negative = negative ? add(base?.negative, negative) : (base?.negative ?? (tf.zerosLike(r) as tf.Tensor4D));
      }
    } else {
      if (base?.relevance) out.relevance = base.relevance;
      if (base?.negative) out.negative = base.negative;
    }
    return out;
  }

  /** The signal at a dense layer's conv2 input from what the consumers of its output sent back. */
  private producerSignal(
    conv: ConvRelevance,
    record: ConvRecord,
    output: tf.Tensor4D,
    r: Accumulated,
    inputShape: readonly number[],
  ): tf.Tensor4D {
    switch (conv.rule.kind) {
      case 'alpha-beta': {
        const relevance = r.relevance as tf.Tensor4D;
        const positive = r.negative ? (tf.sub(relevance, r.negative) as tf.Tensor4D) : relevance;
        return conv.signedSignal(record, positive, r.negative, inputShape);
      }
      case 'epsilon':
        return conv.adjoint(r.signal as tf.Tensor4D, inputShape);
      default:
        // Gamma (and any rule with its own denominator): the relevance of the output, then the rule.
        return conv.signal(record, tf.mul(output, r.signal as tf.Tensor4D) as tf.Tensor4D, inputShape);
    }
  }

  /** The signal at a transition's convolution input, from what the next block sent back to its pooled output. */
  private transitionSignal(transition: TransitionLrp, ts: TransitionState, r: Accumulated): tf.Tensor4D {
    const conv = transition.conv;
    const { height, width } = ts;
    const [n, pooledHeight, pooledWidth] = ts.pooled.shape;
    // Epsilon and alpha-beta: the pool fused into the convolution. Its adjoint (the 1x1 adjoint at the pooled
    // size, then each value spread over its window) is the same as the textbook order, on a quarter of the pixels.
    const spread = (s: tf.Tensor4D) => spreadOverPoolWindows(s, height, width);
    const pooledInput = [n, pooledHeight, pooledWidth];
    switch (conv.rule.kind) {
      case 'alpha-beta': {
        const relevance = r.relevance as tf.Tensor4D;
        const positive = r.negative ? (tf.sub(relevance, r.negative) as tf.Tensor4D) : relevance;
        return spread(conv.signedSignal(ts.conv, positive, r.negative, pooledInput));
      }
      case 'epsilon':
        return spread(conv.adjoint(r.signal as tf.Tensor4D, pooledInput));
      default: {
        const convOutput = ts.convOutput as tf.Tensor4D;
        const rConv = averagePoolRelevance(
          convOutput,
          ts.pooled,
          tf.mul(ts.pooled, r.signal as tf.Tensor4D) as tf.Tensor4D,
          this.options.epsilon,
        );
        return conv.signal(ts.conv, rConv, [n, height, width]);
      }
    }
  }

  /**
   * The BatchNorm signal factors' stabiliser: epsilon, kept just above zero for LRP-0 (epsilon = 0), where
   * a / (a + 0) would make 0 / 0 at every switched-off unit instead of 0 (the floor every epsilon step uses).
   */
  private normEpsilon(): number {
    return Math.max(this.options.epsilon, STABILISER_FLOOR);
  }

  /**
   * z^B's part of the stem's denominator, conv(low, w+) + conv(high, w-) for the lowest/highest input images
   * (the channel bounds inside the image, zero in the stem padding), made once per input size as a batch of one.
   */
  private stemBoxOffset(padded: tf.Tensor4D): tf.Tensor4D {
    const [, h, w, c] = padded.shape;
    const key = h * 100000 + w;
    const cached = this.stemBoxOffsets.get(key);
    if (cached) return cached;
    const made = tf.tidy(() => {
      const inside = tf.pad(tf.ones([1, h - 6, w - 6, c]), [
        [0, 0],
        [3, 3],
        [3, 3],
        [0, 0],
      ]);
      return this.stem.boxOffset(tf.mul(inside, this.low) as tf.Tensor4D, tf.mul(inside, this.high) as tf.Tensor4D);
    });
    tf.keep(made);
    this.stemBoxOffsets.set(key, made);
    return made;
  }
}

/** Whether a transition's rule sees its convolution and average pool as one layer (then pooled first). */
function poolsFirst(conv: ConvRelevance): boolean {
  return conv.rule.kind === 'epsilon' || conv.rule.kind === 'alpha-beta';
}

/** Disposes what `a` holds, except the tensors `next` passed on unchanged. */
function disposeAccumulated(a: Accumulated, next: Accumulated): void {
  const kept = new Set([next.signal, next.relevance, next.negative]);
  tf.dispose([a.signal, a.relevance, a.negative].filter((t): t is tf.Tensor4D => t !== undefined && !kept.has(t)));
}
