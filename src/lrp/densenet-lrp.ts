import * as tf from '@tensorflow/tfjs';
import type { AffineNorm, DenseNet } from '../inference/densenet.js';
import type { PreprocessingSpec } from '../inference/preprocessing-spec.js';
import { convRule, lrpOptionsSchema, type LrpOptions } from './composites.js';
import { ConvRelevance, stabilise } from './conv-relevance.js';
import { affineRelevance, averagePoolRelevance, globalPoolRelevance, maxPoolRelevance } from './layer-relevance.js';

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

/** What the forward pass keeps for the backward one. */
interface ForwardState {
  paddedInput: tf.Tensor4D;
  stemZ: tf.Tensor4D;
  poolInput: tf.Tensor4D;
  pooled: tf.Tensor4D;
  blockOutputs: tf.Tensor4D[];
  layerZ1: tf.Tensor4D[][];
  transitionConv: tf.Tensor4D[];
  transitionPooled: tf.Tensor4D[];
  norm5: tf.Tensor4D;
  pooledFeatures: tf.Tensor2D;
  logits: tf.Tensor2D;
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
    const pooled = tf.maxPool(poolInput, 3, 2, 'valid');
    const blockOutputs: tf.Tensor4D[] = [];
    const layerZ1: tf.Tensor4D[][] = [];
    const transitionConv: tf.Tensor4D[] = [];
    const transitionPooled: tf.Tensor4D[] = [];
    let x = pooled;
    this.layers.forEach((layers, b) => {
      const maps: tf.Tensor4D[] = [x];
      const z1s: tf.Tensor4D[] = [];
      for (const layer of layers) {
        const xin = maps.length === 1 ? x : tf.concat(maps, 3);
        const a = tf.relu(tf.add(tf.mul(xin, layer.norm1.scale), layer.norm1.offset)) as tf.Tensor4D;
        const z1 = tf.add(tf.conv2d(a, layer.conv1Weight, 1, 'valid'), layer.conv1Bias) as tf.Tensor4D;
        z1s.push(z1);
        maps.push(tf.conv2d(tf.relu(z1), layer.conv2Weight, 1, 'same'));
      }
      x = tf.concat(maps, 3);
      blockOutputs.push(x);
      layerZ1.push(z1s);
      const transition = this.transitions[b];
      if (transition) {
        const a = tf.relu(tf.add(tf.mul(x, transition.norm.scale), transition.norm.offset)) as tf.Tensor4D;
        const c = tf.conv2d(a, transition.weight, 1, 'valid');
        transitionConv.push(c);
        x = tf.avgPool(c, 2, 2, 'valid');
        transitionPooled.push(x);
      }
    });
    const norm5 = tf.add(tf.mul(x, p.norm5.scale), p.norm5.offset) as tf.Tensor4D;
    const pooledFeatures = tf.mean(tf.relu(norm5), [1, 2]) as tf.Tensor2D;
    const logits = tf.add(tf.matMul(pooledFeatures, p.classifierWeight), p.classifierBias) as tf.Tensor2D;
    return { paddedInput, stemZ, poolInput, pooled, blockOutputs, layerZ1, transitionConv, transitionPooled, norm5, pooledFeatures, logits };
  }

  /** Relevance maps [batch, H, W] (summed over input channels) for one target class per image. */
  private backward(state: ForwardState, target: tf.Tensor1D): tf.Tensor3D {
    const eps = this.options.epsilon;
    const p = this.network.params;
    const classes = this.classes.length;
    // Start: the target logit itself, then the epsilon rule through the classifier and global pool.
    const start = tf.mul(tf.oneHot(target, classes), state.logits);
    const s = tf.div(start, stabilise(state.logits, eps));
    const rPooled = tf.mul(state.pooledFeatures, tf.matMul(s, p.classifierWeight, false, true)) as tf.Tensor2D;
    const blockCount = this.layers.length;
    // norm5 follows the last dense block (a DenseNet has no transition after it).
    const finalInput = state.blockOutputs[blockCount - 1] ?? state.pooled;
    const rNorm5 = globalPoolRelevance(tf.relu(state.norm5) as tf.Tensor4D, state.pooledFeatures, rPooled, eps);
    let r = affineRelevance(finalInput, p.norm5.scale, state.norm5, rNorm5, eps);

    for (let b = blockCount - 1; b >= 0; b -= 1) {
      const blockOut = state.blockOutputs[b] as tf.Tensor4D;
      const layers = this.layers[b] as DenseLayerLrp[];
      const z1s = state.layerZ1[b] as tf.Tensor4D[];
      const total = blockOut.shape[3];
      const growth = this.network.architecture.growthRate;
      let acc = r;
      for (let l = layers.length - 1; l >= 0; l -= 1) {
        const layer = layers[l] as DenseLayerLrp;
        const z1 = z1s[l] as tf.Tensor4D;
        const cin = total - (layers.length - l) * growth;
        const [n, h, w] = blockOut.shape;
        const rH = tf.slice(acc, [0, 0, 0, cin], [n, h, w, growth]);
        const h0 = tf.slice(blockOut, [0, 0, 0, cin], [n, h, w, growth]);
        const rA1 = layer.conv2.backward(tf.relu(z1) as tf.Tensor4D, rH, h0);
        const xin = tf.slice(blockOut, [0, 0, 0, 0], [n, h, w, cin]);
        const y1 = tf.add(tf.mul(xin, layer.norm1.scale), layer.norm1.offset) as tf.Tensor4D;
        const rA0 = layer.conv1.backward(tf.relu(y1) as tf.Tensor4D, rA1, z1);
        const rXin = affineRelevance(xin, layer.norm1.scale, y1, rA0, eps);
        acc = tf.add(
          acc,
          tf.pad(rXin, [
            [0, 0],
            [0, 0],
            [0, 0],
            [0, total - cin],
          ]),
        );
      }
      const [n, h, w] = blockOut.shape;
      const c0 = total - layers.length * growth;
      const rBlockInput = tf.slice(acc, [0, 0, 0, 0], [n, h, w, c0]);
      if (b === 0) {
        r = rBlockInput;
        break;
      }
      // The block input came from transition b-1: average pool, its convolution, its norm.
      const transition = this.transitions[b - 1] as TransitionLrp;
      const conv = state.transitionConv[b - 1] as tf.Tensor4D;
      const rConv = averagePoolRelevance(conv, state.transitionPooled[b - 1] as tf.Tensor4D, rBlockInput, eps);
      const previous = state.blockOutputs[b - 1] as tf.Tensor4D;
      const y = tf.add(tf.mul(previous, transition.norm.scale), transition.norm.offset) as tf.Tensor4D;
      const rA = transition.conv.backward(tf.relu(y) as tf.Tensor4D, rConv, conv);
      r = affineRelevance(previous, transition.norm.scale, y, rA, eps);
    }
    const rPoolInput = maxPoolRelevance(state.poolInput, state.pooled, r, 3, 2);
    const [n, ph, pw, c] = rPoolInput.shape;
    const rStem = tf.slice(rPoolInput, [0, 1, 1, 0], [n, ph - 2, pw - 2, c]);
    const bounds = this.stem.rule.kind === 'z-box' ? this.boundsLike(state.paddedInput) : undefined;
    const rPadded = this.stem.backward(state.paddedInput, rStem, state.stemZ, bounds);
    const [, hh, ww, cc] = rPadded.shape;
    const rInput = tf.slice(rPadded, [0, 3, 3, 0], [n, hh - 6, ww - 6, cc]);
    return tf.sum(rInput, 3) as tf.Tensor3D;
  }

  /** Lowest/highest input images for z^B: the channel bounds inside the image, zero in the stem padding. */
  private boundsLike(padded: tf.Tensor4D): { low: tf.Tensor4D; high: tf.Tensor4D } {
    const [n, h, w, c] = padded.shape;
    const inside = tf.pad(tf.ones([n, h - 6, w - 6, c]), [
      [0, 0],
      [3, 3],
      [3, 3],
      [0, 0],
    ]);
    return { low: tf.mul(inside, this.low) as tf.Tensor4D, high: tf.mul(inside, this.high) as tf.Tensor4D };
  }
}
