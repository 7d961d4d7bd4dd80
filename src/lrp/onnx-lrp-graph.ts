import { emitInput, type DenseNetGraphSource } from '../inference/onnx/densenet-graph.js';
import { OnnxGraphBuilder } from '../inference/onnx/onnx-graph.js';
import { hostAffineNorm, type HostAffineNorm } from '../inference/host-norm.js';
import { GatewayError } from '../errors.js';
import { convRule, lrpOptionsSchema, type ConvRule, type LrpOptions } from './composites.js';
import {
  adjointFilter,
  boundFilter,
  concatInputs,
  concatOutputs,
  gammaBias,
  gammaFilter,
  mapFilter,
  negativePart,
  positivePart,
  scaleOutputs,
  type HostFilter,
} from './onnx-lrp-weights.js';
import { maxPoolRelevanceGraph } from './onnx-lrp-pool.js';

export interface LrpGraphSource extends DenseNetGraphSource {
  /** Class names in output order (numClasses of them). */
  classes: readonly string[];
  /** Parsed options (lrpOptionsSchema): the composite and its parameters. */
  options: LrpOptions;
}

// Rules other than epsilon keep their denominators off zero by this (as ConvRelevance does).
const TINY = 1e-6;
// LRP-0 (epsilon = 0): the stabiliser is floored here, so a dead unit (0 / 0) sends a zero signal, never NaN.
const EPSILON_FLOOR = 1e-30;

/** Which accumulator a producer reads (see DenseNetLrp's RelevanceMode). */
type Mode = 'signal' | 'relevance';

/** Channels [from, to) of a block. */
interface Range {
  from: number;
  to: number;
}
const ALL: Range = { from: 0, to: Number.POSITIVE_INFINITY };

/** Which accumulators one block's channels need (DenseNetLrp's BlockNeeds). */
interface Needs {
  signal?: Range;
  relevance?: Range;
  negative: boolean;
}

/** Tensor names of the accumulators over a block's channels (absent: nothing, i.e. zero). */
interface Acc {
  signal?: string;
  relevance?: string;
  negative?: string;
}

/** A BatchNorm consumer as the backward pass sees it: its ReLU output over all its input channels, its scale. */
interface Consumer {
  active: string;
  norm: HostAffineNorm;
  width: number;
}

function within(range: Range | undefined, width: number): { from: number; count: number } | undefined {
  if (!range) return undefined;
  const to = Math.min(range.to, width);
  return to > range.from ? { from: range.from, count: to - range.from } : undefined;
}

const modeOf = (rule: ConvRule): Mode => (rule.kind === 'alpha-beta' ? 'relevance' : 'signal');

/** One convolution's filters for its rule, all made on the host. */
interface ConvFilters {
  rule: ConvRule;
  /** The forward filter (BatchNorm after it folded in) and bias. */
  weight: string;
  bias?: string;
  /** The bias shaped [C, 1, 1], to subtract from an NCHW output. */
  channelBias?: string;
  /** gamma: the rule's forward filter and bias (for its denominator). */
  ruleWeight?: string;
  ruleBias?: string;
  /** alpha-beta: w+ (the positive part of z). */
  positive?: string;
  /** The adjoint of the rule's filter (epsilon, gamma); alpha-beta: of [w+ | w-] (made on first use). */
  adjoint?: string;
  splitAdjoint?: () => string;
  /** alpha-beta where every consumer scale is positive: the adjoints of alpha w+, and of [alpha w+ | -beta w-]. */
  weightedPositiveAdjoint?: () => string;
  weightedSplitAdjoint?: () => string;
}

/**
 * One LRP composite as an ONNX model, the same rules and parameters as DenseNetLrp:
 * inputs  'input'  float32 [N, S, S, C] NHWC (emitInput), 'target' int64 [N] (a class index, or -1 for the
 *                  predicted class of that image);
 * outputs 'logits' float32 [N, K], 'target_index' int64 [N] (the class explained), 'relevance' float32 [N, S, S]
 *                  (summed over the input channels, like Explanation.relevance).
 */
export function buildLrpModel(source: LrpGraphSource): Uint8Array {
  return new LrpGraph(source).build();
}

class LrpGraph {
  private readonly g: OnnxGraphBuilder;
  private readonly o: LrpOptions;
  /** The epsilon stabiliser, also of the BatchNorm signal factors (floored: see EPSILON_FLOOR). */
  private readonly eps: number;

  constructor(private readonly source: LrpGraphSource) {
    this.o = lrpOptionsSchema.parse(source.options);
    this.g = new OnnxGraphBuilder(`densenet-lrp-${this.o.composite}`);
    this.eps = Math.max(this.o.epsilon, EPSILON_FLOOR);
  }

  build(): Uint8Array {
    const { g, o, source } = this;
    const arch = source.architecture;
    const growth = arch.growthRate;
    const classes = arch.numClasses;
    const size = source.preprocessing.inputSize;
    const x = emitInput(g, source.preprocessing);
    const target = g.input('target', 'int64', ['N']);

    // ---- rules and filters
    const blockRules = arch.blockConfig.map((_, block) => convRule(o, { kind: 'dense-layer', block }));
    const transitionRules = arch.blockConfig.slice(0, -1).map((_, index) => convRule(o, { kind: 'transition', index }));
    const stemRule = convRule(o, { kind: 'stem' });
    const stemPoolMode: Mode = blockRules[0] ? modeOf(blockRules[0]) : 'signal';

    const norm = (prefix: string) => hostAffineNorm(source.weights, prefix);
    const filter = (name: string): HostFilter => {
      const t = source.weights.get(name);
      if (!t || t.shape.length !== 4) throw new GatewayError('INTERNAL', `weights lack the filter ${name}`);
      return { data: t.data, dims: t.shape as [number, number, number, number] };
    };
    const norm0 = norm('features.norm0');
    const stemWeight = scaleOutputs(filter('features.conv0.weight'), norm0.scale);
    const c0 = stemWeight.dims[0];

    // ---- forward pass
    const z0 = this.conv(x, stemWeight, { stride: 2, pad: 3, bias: norm0.offset }, 'stem_z');
    const poolInput = g.node('Pad', [g.node('Relu', [z0]), g.int64s([0, 0, 1, 1, 0, 0, 1, 1])], {}, 'stem_pool_input');
    const pooled = g.node('MaxPool', [poolInput], { kernel_shape: { ints: [3, 3] }, strides: { ints: [2, 2] } });

    interface LayerState {
      consumer: Consumer;
      filters1: ConvFilters;
      filters2: ConvFilters;
      hidden: string;
      output: string;
      rec1: Record<string, string>;
      rec2: Record<string, string>;
    }
    interface TransitionState {
      consumer: Consumer;
      filters: ConvFilters;
      pooled: string;
      rec: Record<string, string>;
      convOutput?: string;
      /** The transition's input size (the block's). */
      height: number;
      width: number;
    }
    const layerStates: LayerState[][] = [];
    const transitionStates: TransitionState[] = [];
    const needs: Needs[] = [];
    let features = pooled;
    let channels = c0;
    // Sizes: the stem convolution (7x7, stride 2, padding 3), then the max pool (3x3, stride 2, padding 1).
    const stemSpatial = Math.floor((size + 6 - 7) / 2) + 1;
    const poolSpatial = Math.floor((stemSpatial + 2 - 3) / 2) + 1;
    let spatial = poolSpatial;

    arch.blockConfig.forEach((count, b) => {
      const rule = blockRules[b] as ConvRule;
      const inputChannels = channels;
      const states: LayerState[] = [];
      const consumers: HostAffineNorm[] = [];
      for (let l = 0; l < count; l += 1) {
        const prefix = `features.denseblock${b + 1}.denselayer${l + 1}`;
        const n1 = norm(`${prefix}.norm1`);
        const n2 = norm(`${prefix}.norm2`);
        consumers.push(n1);
        const w1 = scaleOutputs(filter(`${prefix}.conv1.weight`), n2.scale);
        const w2 = filter(`${prefix}.conv2.weight`);
        const filters1 = this.filters(w1, n2.offset, rule);
        const filters2 = this.filters(w2, undefined, rule);
        const a1 = this.affineRelu(features, n1);
        const z1 = this.convWith(a1, filters1.weight, filters1.bias, 0);
        const hidden = g.node('Relu', [z1]);
        const output = this.convWith(hidden, filters2.weight, undefined, 1);
        states.push({
          consumer: { active: a1, norm: n1, width: channels },
          filters1,
          filters2,
          hidden,
          output,
          rec1: this.record(filters1, a1, z1, 0),
          rec2: this.record(filters2, hidden, output, 1),
        });
        features = g.node('Concat', [features, output], { axis: { i: 1 } }, 'features');
        channels += growth;
      }
      layerStates.push(states);
      const transitionRule = transitionRules[b];
      let lastNorm: HostAffineNorm;
      if (transitionRule) {
        const prefix = `features.transition${b + 1}`;
        const tn = norm(`${prefix}.norm`);
        lastNorm = tn;
        const filters = this.filters(filter(`${prefix}.conv.weight`), undefined, transitionRule);
        const a = this.affineRelu(features, tn);
        const consumer: Consumer = { active: a, norm: tn, width: channels };
        const pool = (t: string) =>
          g.node('AveragePool', [t], { kernel_shape: { ints: [2, 2] }, strides: { ints: [2, 2] } });
        const out = filters.weight;
        const outChannels = source.weights.get(`${prefix}.conv.weight`)?.shape[0] ?? 0;
        if (poolsFirst(transitionRule)) {
          const pooledInput = pool(a);
          const tp = this.convWith(pooledInput, out, undefined, 0);
          transitionStates.push({
            consumer,
            filters,
            pooled: tp,
            rec: this.record(filters, pooledInput, tp, 0),
            height: spatial,
            width: spatial,
          });
          features = tp;
        } else {
          const convOutput = this.convWith(a, out, undefined, 0);
          const tp = pool(convOutput);
          transitionStates.push({
            consumer,
            filters,
            pooled: tp,
            convOutput,
            rec: this.record(filters, a, convOutput, 0),
            height: spatial,
            width: spatial,
          });
          features = tp;
        }
        channels = outChannels;
        spatial = Math.floor(spatial / 2);
      } else {
        lastNorm = norm('features.norm5');
      }
      consumers.push(lastNorm);
      // Which accumulators the block's channels need, from the modes of their producers (DenseNetLrp's needs).
      const layerMode = modeOf(rule);
      const previous = transitionRules[b - 1];
      const inputMode: Mode = b === 0 ? stemPoolMode : previous ? modeOf(previous) : 'signal';
      const negative = consumers.some((n) => n.scale.some((v) => v < 0));
      needs.push(
        layerMode === inputMode
          ? { [inputMode]: ALL, negative }
          : {
              [inputMode]: { from: 0, to: inputChannels },
              [layerMode]: { from: inputChannels, to: Number.POSITIVE_INFINITY },
              negative,
            },
      );
    });

    const norm5 = norm('features.norm5');
    const a5 = this.affineRelu(features, norm5);
    const pooledFeatures = g.node(
      'ReduceMean',
      [a5],
      { axes: { ints: [2, 3] }, keepdims: { i: 0 } },
      'pooled_features',
    );
    const classifier = source.weights.get('classifier.weight');
    const classifierBias = source.weights.get('classifier.bias');
    if (!classifier || !classifierBias) throw new GatewayError('INTERNAL', 'weights lack the classifier');
    const classifierWeight = g.constant(classifier.data, [classes, channels], 'classifier_weight');
    const logits = g.node(
      'Gemm',
      [pooledFeatures, classifierWeight, g.floats([...classifierBias.data], 'classifier_bias')],
      {
        transB: { i: 1 },
      },
      'logits_value',
    );

    // ---- the explained class: the target, or the predicted class where it is negative
    const predicted = g.node('ArgMax', [logits], { axis: { i: 1 }, keepdims: { i: 0 } }, 'predicted');
    const zero64 = g.constant(BigInt64Array.of(0n), [], 'zero_int64');
    const targetIndex = g.node(
      'Where',
      [g.node('Less', [target, zero64]), predicted, target],
      {},
      'target_index_value',
    );

    // ---- backward pass: the target logit through the classifier and the global pool (epsilon)
    const classRange = g.constant(
      BigInt64Array.from({ length: classes }, (_, i) => BigInt(i)),
      [1, classes],
      'class_range',
    );
    const oneHot = g.node('Cast', [g.node('Equal', [g.node('Unsqueeze', [targetIndex, g.int64s([1])]), classRange])], {
      to: { i: 1 },
    });
    const start = g.node('Mul', [oneHot, logits]);
    const s = g.node('Div', [start, this.stab(logits, this.eps)]);
    const rPooled = g.node('Mul', [pooledFeatures, g.node('MatMul', [s, classifierWeight])]);
    const area = spatial * spatial;
    const headSignal = g.node('Reshape', [
      g.node('Div', [rPooled, g.node('Mul', [this.stab(pooledFeatures, this.eps), g.scalar(area)])]),
      g.int64s([0, channels, 1, 1]),
    ]);
    const blocks = arch.blockConfig.length;
    let acc = this.consume(
      undefined,
      { active: a5, norm: norm5, width: channels },
      headSignal,
      needs[blocks - 1] as Needs,
    );

    let rBlock1 = '';
    for (let b = blocks - 1; b >= 0; b -= 1) {
      const states = layerStates[b] as LayerState[];
      const need = needs[b] as Needs;
      for (let l = states.length - 1; l >= 0; l -= 1) {
        const st = states[l] as LayerState;
        const cin = st.consumer.width;
        const accWidth = (range: Range | undefined) => within(range, cin + growth)?.count ?? 0;
        const own = (t: string | undefined, range: Range | undefined) =>
          t && range && range.from <= cin && range.to >= cin + growth
            ? this.slice(t, cin - range.from, growth, accWidth(range))
            : undefined;
        const rest = (t: string | undefined, range: Range | undefined) => {
          const part = t ? within(range, cin) : undefined;
          return t && part ? this.slice(t, 0, part.count, accWidth(range)) : undefined;
        };
        const c2 = this.producerSignal(
          st.filters2,
          st.rec2,
          st.output,
          {
            signal: own(acc.signal, need.signal),
            relevance: own(acc.relevance, need.relevance),
            negative: own(acc.negative, need.relevance),
          },
          1,
        );
        const c1 = this.convSignal(st.filters1, st.rec1, g.node('Mul', [st.hidden, c2]), 0, st.hidden);
        acc = this.consume(
          {
            signal: rest(acc.signal, need.signal),
            relevance: rest(acc.relevance, need.relevance),
            negative: rest(acc.negative, need.relevance),
          },
          st.consumer,
          c1,
          need,
        );
      }
      if (b === 0) {
        rBlock1 =
          stemPoolMode === 'relevance' ? (acc.relevance as string) : g.node('Mul', [pooled, acc.signal as string]);
        break;
      }
      const ts = transitionStates[b - 1] as TransitionState;
      const c = this.transitionSignal(ts, acc);
      acc = this.consume(undefined, ts.consumer, c, needs[b - 1] as Needs);
    }

    // ---- the stem max pool: each window's relevance to its first winner
    const rStem = g.node('Slice', [
      maxPoolRelevanceGraph(g, poolInput, pooled, rBlock1, {
        window: 3,
        stride: 2,
        inputHeight: stemSpatial + 2,
        inputWidth: stemSpatial + 2,
        outputHeight: poolSpatial,
        outputWidth: poolSpatial,
      }),
      g.int64s([1, 1]),
      g.int64s([-1, -1]),
      g.int64s([2, 3]),
    ]);

    // ---- the stem convolution (stride 2): its adjoint is a ConvTranspose
    const outputPadding = size - (2 * (stemSpatial - 1) + 1);
    const transpose = (t: string, w: HostFilter) =>
      g.node('ConvTranspose', [t, g.constant(w.data, w.dims, 'stem_adjoint')], {
        strides: { ints: [2, 2] },
        pads: { ints: [3, 3, 3, 3] },
        output_padding: { ints: [outputPadding, outputPadding] },
      });
    const sumChannels = (t: string) => g.node('ReduceSum', [t, g.int64s([1])], { keepdims: { i: 0 } });
    let relevance: string;
    switch (stemRule.kind) {
      case 'z-box': {
        const mean = source.preprocessing.mean;
        const std = source.preprocessing.std;
        const low =
          o.inputBounds?.low ?? [0, 1, 2].map((i) => (0 - (mean[i] ?? mean[0] ?? 0)) / (std[i] ?? std[0] ?? 1));
        const high =
          o.inputBounds?.high ?? [0, 1, 2].map((i) => (1 - (mean[i] ?? mean[0] ?? 0)) / (std[i] ?? std[0] ?? 1));
        // The bounds' part of the denominator, conv(low, w+) + conv(high, w-) with the bounds inside the image and
        // zero in the padding: a constant, folded by the runtime when the session is made.
        const boundImage = (v: readonly number[]) =>
          g.constant(
            Float32Array.from({ length: 3 * size * size }, (_, i) =>
              Math.fround(v[Math.floor(i / (size * size))] ?? 0),
            ),
            [1, 3, size, size],
            'stem_bound',
          );
        const offset = g.node('Add', [
          this.conv(boundImage(low), positivePart(stemWeight), { stride: 2, pad: 3 }, 'stem_low'),
          this.conv(boundImage(high), negativePart(stemWeight), { stride: 2, pad: 3 }, 'stem_high'),
        ]);
        const linear = g.node('Sub', [z0, g.constant(norm0.offset, [c0, 1, 1], 'stem_bias')]);
        const sz = g.node('Div', [rStem, this.stab(g.node('Sub', [linear, offset]), TINY)]);
        const both = transpose(sz, concatInputs(stemWeight, boundFilter(stemWeight, low, high)));
        const xPart = g.node('Mul', [x, this.slice(both, 0, 3, 4)]);
        relevance = g.node('Sub', [sumChannels(xPart), sumChannels(this.slice(both, 3, 1, 4))]);
        break;
      }
      case 'flat': {
        // Every output sees 7 x 7 x 3 inputs of weight one; the map sums the 3 identical channels.
        const kernel = stemWeight.dims[2] * stemWeight.dims[3];
        const count = Math.fround(kernel * 3 + TINY);
        const ones: HostFilter = {
          data: new Float32Array(kernel).fill(1),
          dims: [1, 1, stemWeight.dims[2], stemWeight.dims[3]],
        };
        const perOutput = g.node('ReduceSum', [g.node('Div', [rStem, g.scalar(count)]), g.int64s([1])], {
          keepdims: { i: 1 },
        });
        relevance = sumChannels(g.node('Mul', [transpose(perOutput, ones), g.scalar(3)]));
        break;
      }
      case 'epsilon': {
        const sz = g.node('Div', [rStem, this.stab(z0, this.eps)]);
        relevance = sumChannels(g.node('Mul', [x, transpose(sz, stemWeight)]));
        break;
      }
      default:
        throw new GatewayError('INTERNAL', `the ${stemRule.kind} rule is not implemented for the stem`);
    }

    g.output('logits', 'float32', ['N', classes], logits);
    g.output('target_index', 'int64', ['N'], targetIndex);
    g.output('relevance', 'float32', ['N', size, size], relevance);
    return g.toBytes();
  }

  /** z + epsilon * sign(z), with sign(0) = +1. */
  private stab(z: string, epsilon: number): string {
    const g = this.g;
    return g.node('Where', [
      g.node('GreaterOrEqual', [z, g.scalar(0)]),
      g.node('Add', [z, g.scalar(epsilon)]),
      g.node('Sub', [z, g.scalar(epsilon)]),
    ]);
  }

  /** Channels [from, from + count) of an NCHW tensor with `width` channels (the tensor itself if that is all). */
  private slice(t: string, from: number, count: number, width: number): string {
    if (from === 0 && count === width) return t;
    const g = this.g;
    return g.node('Slice', [t, g.int64s([from]), g.int64s([from + count]), g.int64s([1])]);
  }

  private channelConstant(values: Float32Array, hint: string): string {
    return this.g.constant(values, [values.length, 1, 1], hint);
  }

  /**
   * relu(x * scale + offset) per channel, the BatchNorm as a BatchNormalization node (mean 0, variance 1, epsilon
   * 0) rather than Mul + Add, as the forward graph does: the CPU provider keeps it in its blocked channel layout
   * (DenseNet-201 isnet LRP, 224x224 on 2 cores: 214 -> 205 ms at batch 1, 189 -> 180 ms per image at batch 8).
   */
  private affineRelu(t: string, n: HostAffineNorm): string {
    const g = this.g;
    const c = n.scale.length;
    return g.node('Relu', [
      g.node(
        'BatchNormalization',
        [
          t,
          g.constant(n.scale, [c], 'norm_scale'),
          g.constant(n.offset, [c], 'norm_offset'),
          g.constant(new Float32Array(c), [c], 'norm_zero_mean'),
          g.constant(new Float32Array(c).fill(1), [c], 'norm_unit_var'),
        ],
        { epsilon: { f: 0 } },
      ),
    ]);
  }

  private conv(
    t: string,
    w: HostFilter,
    opts: { stride: number; pad: number; bias?: Float32Array },
    hint: string,
  ): string {
    const g = this.g;
    const inputs = [t, g.constant(w.data, w.dims, `${hint}_weight`)];
    if (opts.bias) inputs.push(g.constant(opts.bias, [opts.bias.length], `${hint}_bias`));
    return g.node(
      'Conv',
      inputs,
      { strides: { ints: [opts.stride, opts.stride] }, pads: { ints: [opts.pad, opts.pad, opts.pad, opts.pad] } },
      hint,
    );
  }

  /** A stride-1 Conv with an initializer `w` and padding `pad`. */
  private convWith(t: string, w: string, bias: string | undefined, pad: number): string {
    return this.g.node('Conv', bias ? [t, w, bias] : [t, w], { pads: { ints: [pad, pad, pad, pad] } });
  }

  /** The initializers a stride-1 convolution's rule needs (ConvRelevance's constructor). */
  private filters(w: HostFilter, bias: Float32Array | undefined, rule: ConvRule): ConvFilters {
    const g = this.g;
    const constant = (f: HostFilter, hint: string) => g.constant(f.data, f.dims, hint);
    const out: ConvFilters = {
      rule,
      weight: constant(w, 'weight'),
      ...(bias ? { bias: g.constant(bias, [bias.length], 'bias') } : {}),
    };
    switch (rule.kind) {
      case 'epsilon':
        out.adjoint = constant(adjointFilter(w), 'adjoint');
        break;
      case 'gamma': {
        const ruleWeight = gammaFilter(w, rule.gamma);
        out.ruleWeight = constant(ruleWeight, 'gamma_weight');
        if (bias) out.ruleBias = g.constant(gammaBias(bias, rule.gamma), [bias.length], 'gamma_bias');
        out.adjoint = constant(adjointFilter(ruleWeight), 'gamma_adjoint');
        break;
      }
      case 'alpha-beta': {
        // Made on first use: which adjoints a producer needs depends on beta and on its consumers' scales.
        const positive = positivePart(w);
        out.positive = constant(positive, 'positive_weight');
        if (bias) out.channelBias = this.channelConstant(bias, 'bias');
        const negative = negativePart(w);
        out.splitAdjoint = once(() => constant(adjointFilter(concatOutputs(positive, negative)), 'split_adjoint'));
        const alpha = (v: number) => v * rule.alpha;
        out.weightedPositiveAdjoint = once(() =>
          constant(adjointFilter(mapFilter(positive, alpha)), 'weighted_positive_adjoint'),
        );
        out.weightedSplitAdjoint = once(() =>
          constant(
            adjointFilter(
              concatOutputs(
                mapFilter(positive, alpha),
                mapFilter(negative, (v) => -v * rule.beta),
              ),
            ),
            'weighted_split_adjoint',
          ),
        );
        break;
      }
      default:
        throw new GatewayError('INTERNAL', `the ${rule.kind} rule is not implemented inside the network`);
    }
    return out;
  }

  /** What the rule keeps of the forward pass (ConvRelevance.record): z's positive and negative parts, or gamma's z. */
  private record(f: ConvFilters, input: string, z: string, pad: number): Record<string, string> {
    const g = this.g;
    switch (f.rule.kind) {
      case 'alpha-beta': {
        const zp = this.convWith(input, f.positive as string, undefined, pad);
        const linear = f.channelBias ? g.node('Sub', [z, f.channelBias]) : z;
        return { zp, zn: g.node('Sub', [linear, zp]) };
      }
      case 'gamma':
        return { z: this.convWith(input, f.ruleWeight as string, f.ruleBias, pad) };
      default:
        return { z };
    }
  }

  /**
   * The signal at a convolution's input from the relevance `r` of its output (ConvRelevance.signal).
   * `active`: relu(z), given where r is zero wherever z <= 0 (r = relu(z) * c: a dense layer's conv1). Then the
   * stabiliser's sign only matters where r is zero, and z + epsilon * sign(z) is relu(z) + epsilon where it counts
   * (gamma's z is at least z there, w+ and the inputs being non-negative): one addition instead of four ops.
   */
  private convSignal(f: ConvFilters, rec: Record<string, string>, r: string, pad: number, active?: string): string {
    const g = this.g;
    if (f.rule.kind === 'alpha-beta') return this.signedSignal(f, rec, r, undefined, pad);
    const z = rec['z'] as string;
    const denominator = active
      ? g.node('Add', [f.rule.kind === 'gamma' ? g.node('Relu', [z]) : active, g.scalar(this.eps)])
      : this.stab(z, this.eps);
    return this.convWith(g.node('Div', [r, denominator]), f.adjoint as string, undefined, pad);
  }

  /** Alpha-beta with relevance that came through positive and negative consumer scales (ConvRelevance.signedSignal). */
  private signedSignal(
    f: ConvFilters,
    rec: Record<string, string>,
    positive: string,
    negative: string | undefined,
    pad: number,
  ): string {
    const g = this.g;
    const rule = f.rule;
    if (rule.kind !== 'alpha-beta') throw new GatewayError('INTERNAL', `the ${rule.kind} rule has no split`);
    const zp = g.node('Add', [rec['zp'] as string, g.scalar(TINY)]);
    if (negative === undefined) {
      // Every consumer scale positive: alpha and -beta are folded into the adjoint's filter (weightedAdjoint).
      const sp = g.node('Div', [positive, zp]);
      if (rule.beta === 0) return this.convWith(sp, (f.weightedPositiveAdjoint as () => string)(), undefined, pad);
      const sn = g.node('Div', [positive, g.node('Sub', [rec['zn'] as string, g.scalar(TINY)])]);
      const both = g.node('Concat', [sp, sn], { axis: { i: 1 } });
      return this.convWith(both, (f.weightedSplitAdjoint as () => string)(), undefined, pad);
    }
    const zn = g.node('Sub', [rec['zn'] as string, g.scalar(TINY)]);
    // Relevance through negative scales swaps the roles of w+ and w- (DenseNetLrp's splitRatios).
    const forPositive = g.node('Sub', [
      g.node('Mul', [positive, g.scalar(rule.alpha)]),
      g.node('Mul', [negative, g.scalar(rule.beta)]),
    ]);
    const forNegative = g.node('Sub', [
      g.node('Mul', [negative, g.scalar(rule.alpha)]),
      g.node('Mul', [positive, g.scalar(rule.beta)]),
    ]);
    const both = g.node('Concat', [g.node('Div', [forPositive, zp]), g.node('Div', [forNegative, zn])], {
      axis: { i: 1 },
    });
    return this.convWith(both, (f.splitAdjoint as () => string)(), undefined, pad);
  }

  /** The signal at a dense layer's conv2 input (DenseNetLrp.producerSignal). */
  private producerSignal(f: ConvFilters, rec: Record<string, string>, output: string, r: Acc, pad: number): string {
    const g = this.g;
    switch (f.rule.kind) {
      case 'alpha-beta': {
        const relevance = r.relevance as string;
        const positive = r.negative ? g.node('Sub', [relevance, r.negative]) : relevance;
        return this.signedSignal(f, rec, positive, r.negative, pad);
      }
      case 'epsilon':
        return this.convWith(r.signal as string, f.adjoint as string, undefined, pad);
      default:
        return this.convSignal(f, rec, g.node('Mul', [output, r.signal as string]), pad);
    }
  }

  /** The signal at a transition's input from what the next block sent back (DenseNetLrp.transitionSignal). */
  private transitionSignal(
    ts: {
      filters: ConvFilters;
      rec: Record<string, string>;
      pooled: string;
      convOutput?: string;
      height: number;
      width: number;
      consumer: Consumer;
    },
    r: Acc,
  ): string {
    const g = this.g;
    const f = ts.filters;
    const spread = (t: string) => this.spread(t, ts.height, ts.width);
    switch (f.rule.kind) {
      case 'alpha-beta': {
        const relevance = r.relevance as string;
        const positive = r.negative ? g.node('Sub', [relevance, r.negative]) : relevance;
        return spread(this.signedSignal(f, ts.rec, positive, r.negative, 0));
      }
      case 'epsilon':
        return spread(this.convWith(r.signal as string, f.adjoint as string, undefined, 0));
      default: {
        const rPooled = g.node('Div', [g.node('Mul', [ts.pooled, r.signal as string]), this.stab(ts.pooled, this.eps)]);
        const rConv = g.node('Mul', [ts.convOutput as string, spread(rPooled)]);
        return this.convSignal(f, ts.rec, rConv, 0);
      }
    }
  }

  /**
   * The adjoint of the 2x2/2 average pool: a quarter of each value over its window, on an input of height x width
   * (a row or column the pool dropped gets nothing).
   */
  private spread(t: string, height: number, width: number): string {
    const g = this.g;
    const h = Math.floor(height / 2);
    const w = Math.floor(width / 2);
    const quarter = g.node('Mul', [t, g.scalar(0.25)]);
    const six = g.node('Reshape', [quarter, g.int64s([0, 0, h, 1, w, 1])]);
    // Each value repeated over its window by two Concats (copies), several times faster than Expand on the CPU.
    const columns = g.node('Concat', [six, six], { axis: { i: 5 } });
    const doubled = g.node('Reshape', [
      g.node('Concat', [columns, columns], { axis: { i: 3 } }),
      g.int64s([0, 0, h * 2, w * 2]),
    ]);
    if (height === h * 2 && width === w * 2) return doubled;
    return g.node('Pad', [doubled, g.int64s([0, 0, 0, 0, 0, 0, height - h * 2, width - w * 2])]);
  }

  /**
   * Adds what one BatchNorm consumer sends back to the channels it read, given the signal `c` at its ReLU output
   * (DenseNetLrp.consume): R_y = a * c to `relevance` (and `negative` where its scale is negative), the signal
   * factor scale * a / (a + epsilon) times c to `signal`, each over its range's channels.
   */
  private consume(base: Acc | undefined, consumer: Consumer, c: string, needs: Needs): Acc {
    const g = this.g;
    const width = consumer.width;
    const add = (a: string | undefined, b: string) => (a ? g.node('Add', [a, b]) : b);
    const out: Acc = {};
    const sig = within(needs.signal, width);
    if (sig) {
      const a = this.slice(consumer.active, sig.from, sig.count, width);
      const scale = this.channelConstant(consumer.norm.scale.slice(sig.from, sig.from + sig.count), 'signal_scale');
      const factor = g.node('Div', [g.node('Mul', [a, scale]), g.node('Add', [a, g.scalar(this.eps)])]);
      out.signal = add(base?.signal, g.node('Mul', [factor, this.slice(c, sig.from, sig.count, width)]));
    } else if (base?.signal) out.signal = base.signal;
    const rel = within(needs.relevance, width);
    if (rel) {
      const r = g.node('Mul', [
        this.slice(consumer.active, rel.from, rel.count, width),
        this.slice(c, rel.from, rel.count, width),
      ]);
      out.relevance = add(base?.relevance, r);
      const mask = consumer.norm.scale.slice(rel.from, rel.from + rel.count).map((v) => (v < 0 ? 1 : 0));
      if (needs.negative && mask.some((v) => v > 0)) {
        out.negative = add(base?.negative, g.node('Mul', [r, this.channelConstant(mask, 'negative_mask')]));
      } else if (base?.negative) out.negative = base.negative;
    } else {
      if (base?.relevance) out.relevance = base.relevance;
      if (base?.negative) out.negative = base.negative;
    }
    return out;
  }
}

/** `make`, called once, on first use. */
function once(make: () => string): () => string {
  let made: string | undefined;
  return () => (made ??= make());
}

/** Whether a transition's rule sees its convolution and average pool as one layer (then pooled first). */
function poolsFirst(rule: ConvRule): boolean {
  return rule.kind === 'epsilon' || rule.kind === 'alpha-beta';
}
