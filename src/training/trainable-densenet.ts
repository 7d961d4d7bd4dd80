import * as tf from '@tensorflow/tfjs';
import { expectedParameters, featureChannels, type DenseNetArchitecture } from '../inference/densenet-architecture.js';
import { BN_EPSILON } from '../inference/host-norm.js';
import type { HostTensor } from '../inference/weight-import.js';
import { batchStatisticsNorm } from './batch-norm.js';
import { trainableConv2d, type ConvOptions } from './conv-gradients.js';
import { trainableMaxPool } from './max-pool.js';
import { GatewayError, unreachable } from '../errors.js';

/**
 * How BatchNorm behaves while training.
 * - `batch-statistics` (PyTorch's train()): normalise with the batch's own mean/variance and move the
 *   running statistics towards them with momentum 0.1 (unbiased variance, as PyTorch does). Needed when
 *   training from random initialisation, whose running statistics (0 and 1) mean nothing.
 * - `frozen-statistics`: normalise with the running statistics, as inference does; only gamma/beta learn.
 *   For fine-tuning pretrained weights with batches too small for reliable statistics.
 */
export type BatchNormMode = 'batch-statistics' | 'frozen-statistics';

/** PyTorch's BatchNorm2d default momentum. */
export const BN_MOMENTUM = 0.1;

interface TrainableNorm {
  gamma: tf.Variable;
  beta: tf.Variable;
  runningMean: tf.Variable;
  runningVar: tf.Variable;
}

interface TrainableLayer {
  norm1: TrainableNorm;
  conv1: tf.Variable; // HWIO
  norm2: TrainableNorm;
  conv2: tf.Variable;
}

interface TrainableTransition {
  norm: TrainableNorm;
  conv: tf.Variable;
}

export interface ForwardOptions {
  /** Training mode: BatchNorm as `batchNorm` says (statistics updated only in `batch-statistics`). */
  training: boolean;
}

/**
 * torchvision's DenseNet with its parameters in tf.Variables, for training. The forward pass is the same
 * computation as src/inference/densenet.ts (same padding, pooling, BN folding order in eval mode), with
 * convolutions through trainableConv2d so that gradients exist and are fast on the wasm backend.
 * Weights come in and go out as a torchvision state_dict (HostTensor, OIHW, [out, in] linear).
 */
export class TrainableDenseNet {
  batchNorm: BatchNormMode = 'batch-statistics';
  /**
   * `fast-gradients`: trainableConv2d (forward-convolution gradients, needed on wasm); `tfjs-kernels`:
   * plain tf.conv2d with tfjs' own gradient kernels (backends that have them, and to check ours against).
   */
  convolution: 'fast-gradients' | 'tfjs-kernels' = 'fast-gradients';
  /**
   * Overrides BN_MOMENTUM while set; `cumulative` averages over the batches seen since the running
   * statistics were reset (PyTorch's momentum=None), which is what recalibration uses.
   */
  private momentumOverride: 'cumulative' | undefined;
  private cumulativeBatches = 0;

  private constructor(
    private arch: DenseNetArchitecture,
    private readonly conv0: tf.Variable,
    private readonly norm0: TrainableNorm,
    private readonly blocks: TrainableLayer[][],
    private readonly transitions: TrainableTransition[],
    private readonly norm5: TrainableNorm,
    private classifierWeight: tf.Variable, // [features, classes]
    private classifierBias: tf.Variable,
  ) {}

  get architecture(): DenseNetArchitecture {
    return this.arch;
  }

  /** From a torchvision state_dict already checked against `arch` (checkDenseNetWeights). */
  static fromHostWeights(arch: DenseNetArchitecture, weights: ReadonlyMap<string, HostTensor>): TrainableDenseNet {
    const get = (name: string): HostTensor => {
      const t = weights.get(name);
      if (t === undefined) unreachable(`weights lack ${name}`); // checked by the caller
      return t;
    };
    const conv = (name: string) =>
      tf.variable(
        tf.tidy(() => tf.transpose(tensorOf(get(name)), [2, 3, 1, 0])),
        true,
      );
    const vector = (name: string, trainable: boolean) => tf.variable(tensorOf(get(name)), trainable);
    const norm = (prefix: string): TrainableNorm => ({
      gamma: vector(`${prefix}.weight`, true),
      beta: vector(`${prefix}.bias`, true),
      runningMean: vector(`${prefix}.running_mean`, false),
      runningVar: vector(`${prefix}.running_var`, false),
    });
    const blocks = arch.blockConfig.map((layers, b) =>
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
    const transitions = arch.blockConfig.slice(0, -1).map((_, b) => ({
      norm: norm(`features.transition${b + 1}.norm`),
      conv: conv(`features.transition${b + 1}.conv.weight`),
    }));
    return new TrainableDenseNet(
      { ...arch, blockConfig: [...arch.blockConfig] },
      conv('features.conv0.weight'),
      norm('features.norm0'),
      blocks,
      transitions,
      norm('features.norm5'),
      tf.variable(
        tf.tidy(() => tf.transpose(tensorOf(get('classifier.weight')))),
        true,
      ),
      vector('classifier.bias', true),
    );
  }

  /** Logits [batch, classes] for an NHWC batch. */
  logits(input: tf.Tensor4D, options: ForwardOptions): tf.Tensor2D {
    return tf.tidy(() => {
      const pooled = tf.mean(tf.relu(this.features(input, options)), [1, 2]) as tf.Tensor2D;
      return tf.add(tf.matMul(pooled, this.classifierWeight as tf.Tensor2D), this.classifierBias) as tf.Tensor2D;
    });
  }

  /** Feature maps after norm5 (before the final ReLU), as DenseNet.features computes them. */
  features(input: tf.Tensor4D, options: ForwardOptions): tf.Tensor4D {
    const bn = (x: tf.Tensor4D, n: TrainableNorm) => this.normalise(x, n, options.training);
    const conv = (x: tf.Tensor4D, w: tf.Variable, conv: ConvOptions) =>
      this.convolution === 'fast-gradients'
        ? trainableConv2d(x, w as tf.Tensor4D, conv)
        : tf.conv2d(x, w as tf.Tensor4D, conv.stride, conv.padding);
    let x = tf.pad(input, [
      [0, 0],
      [3, 3],
      [3, 3],
      [0, 0],
    ]);
    x = conv(x, this.conv0, { stride: 2, padding: 'valid', inputGradient: false });
    x = tf.relu(bn(x, this.norm0));
    // Zero padding is exact for this max pool: its inputs are ReLU outputs, never below zero.
    x = trainableMaxPool(
      tf.pad(x, [
        [0, 0],
        [1, 1],
        [1, 1],
        [0, 0],
      ]),
      3,
      2,
    );
    this.blocks.forEach((layers, b) => {
      const maps: tf.Tensor4D[] = [x];
      for (const layer of layers) {
        const input = maps.length === 1 ? x : tf.concat(maps, 3);
        let h = tf.relu(bn(input, layer.norm1));
        h = conv(h, layer.conv1, { stride: 1, padding: 'valid' });
        h = tf.relu(bn(h, layer.norm2));
        maps.push(conv(h, layer.conv2, { stride: 1, padding: 'same' }));
      }
      x = tf.concat(maps, 3);
      const transition = this.transitions[b];
      if (transition !== undefined) {
        x = conv(tf.relu(bn(x, transition.norm)), transition.conv, { stride: 1, padding: 'valid' });
        x = tf.avgPool(x, 2, 2, 'valid');
      }
    });
    return bn(x, this.norm5);
  }

  /** The variables an optimiser updates (running statistics excluded). */
  trainableVariables(): tf.Variable[] {
    const norms = this.norms();
    return [
      this.conv0,
      ...this.convs(),
      ...norms.flatMap((n) => [n.gamma, n.beta]),
      this.classifierWeight,
      this.classifierBias,
    ];
  }

  /**
   * Recomputes every BatchNorm's running statistics from the given batches in one sweep (PyTorch's
   * torch.optim.swa_utils.update_bn): running statistics after a short, high-learning-rate run lag
   * behind the weights, and inference uses nothing else.
   */
  recalibrateBatchNorm(batches: Iterable<tf.Tensor4D>): void {
    tf.tidy(() => {
      for (const n of this.norms()) {
        n.runningMean.assign(tf.zerosLike(n.runningMean));
        n.runningVar.assign(tf.onesLike(n.runningVar));
      }
    });
    const mode = this.batchNorm;
    this.batchNorm = 'batch-statistics';
    this.momentumOverride = 'cumulative';
    this.cumulativeBatches = 0;
    try {
      for (const batch of batches) {
        tf.dispose(this.logits(batch, { training: true }));
        this.cumulativeBatches += 1;
      }
    } finally {
      this.momentumOverride = undefined;
      this.batchNorm = mode;
    }
  }

  /** The classifier as host tensors in torchvision layout ([classes, features], [classes]). */
  classifier(): { weight: HostTensor; bias: HostTensor } {
    return {
      weight: hostOf(tf.tidy(() => tf.transpose(this.classifierWeight))),
      bias: hostOf(this.classifierBias.clone()),
    };
  }

  /** Replaces the head (a transfer step to a new label set); the architecture's class count follows. */
  replaceClassifier(weight: HostTensor, bias: HostTensor): void {
    const [classes, features] = weight.shape as [number, number];
    if (features !== featureChannels(this.arch) || bias.shape[0] !== classes) {
      throw new GatewayError(
        'WEIGHTS_MISMATCH',
        `classifier [${weight.shape.join(', ')}] does not fit ${featureChannels(this.arch)} features`,
      );
    }
    tf.dispose([this.classifierWeight, this.classifierBias]);
    this.classifierWeight = tf.variable(
      tf.tidy(() => tf.transpose(tensorOf(weight))),
      true,
    );
    this.classifierBias = tf.variable(tensorOf(bias), true);
    this.arch = { ...this.arch, numClasses: classes };
  }

  /** Every parameter and buffer as a torchvision state_dict (names and order of expectedParameters). */
  exportHostWeights(): Map<string, HostTensor> {
    const byName = new Map<string, tf.Tensor>();
    const norm = (prefix: string, n: TrainableNorm) => {
      byName.set(`${prefix}.weight`, n.gamma);
      byName.set(`${prefix}.bias`, n.beta);
      byName.set(`${prefix}.running_mean`, n.runningMean);
      byName.set(`${prefix}.running_var`, n.runningVar);
    };
    const owned: tf.Tensor[] = [];
    const oihw = (v: tf.Variable) => {
      const t = tf.transpose(v, [3, 2, 0, 1]);
      owned.push(t);
      return t;
    };
    byName.set('features.conv0.weight', oihw(this.conv0));
    norm('features.norm0', this.norm0);
    this.blocks.forEach((layers, b) =>
      layers.forEach((layer, l) => {
        const prefix = `features.denseblock${b + 1}.denselayer${l + 1}`;
        norm(`${prefix}.norm1`, layer.norm1);
        byName.set(`${prefix}.conv1.weight`, oihw(layer.conv1));
        norm(`${prefix}.norm2`, layer.norm2);
        byName.set(`${prefix}.conv2.weight`, oihw(layer.conv2));
      }),
    );
    this.transitions.forEach((t, b) => {
      norm(`features.transition${b + 1}.norm`, t.norm);
      byName.set(`features.transition${b + 1}.conv.weight`, oihw(t.conv));
    });
    norm('features.norm5', this.norm5);
    const classifierWeight = tf.transpose(this.classifierWeight);
    owned.push(classifierWeight);
    byName.set('classifier.weight', classifierWeight);
    byName.set('classifier.bias', this.classifierBias);
    const out = new Map<string, HostTensor>();
    for (const spec of expectedParameters(this.arch)) {
      const t = byName.get(spec.name);
      if (t === undefined) unreachable(`no tensor for ${spec.name}`);
      out.set(spec.name, { shape: [...spec.shape], data: t.dataSync() as Float32Array });
    }
    tf.dispose(owned);
    return out;
  }

  /** Host copies of every variable, to return to later (early stopping keeps the best epoch's). */
  snapshot(): Float32Array[] {
    return this.allVariables().map((v) => (v.dataSync() as Float32Array).slice());
  }

  restore(snapshot: readonly Float32Array[]): void {
    const variables = this.allVariables();
    if (snapshot.length !== variables.length) unreachable('a snapshot of a different network was restored');
    tf.tidy(() => variables.forEach((v, i) => v.assign(tf.tensor(snapshot[i] as Float32Array, v.shape))));
  }

  dispose(): void {
    tf.dispose(this.allVariables());
  }

  private normalise(x: tf.Tensor4D, n: TrainableNorm, training: boolean): tf.Tensor4D {
    if (training && this.batchNorm === 'batch-statistics') {
      return batchStatisticsNorm(x, n.gamma as tf.Tensor1D, n.beta as tf.Tensor1D, (mean, variance) =>
        this.updateRunningStatistics(n, mean, variance, x.size / x.shape[3]),
      );
    }
    return tf.batchNorm(
      x,
      n.runningMean as tf.Tensor1D,
      n.runningVar as tf.Tensor1D,
      n.beta as tf.Tensor1D,
      n.gamma as tf.Tensor1D,
      BN_EPSILON,
    );
  }

  private updateRunningStatistics(n: TrainableNorm, mean: tf.Tensor, variance: tf.Tensor, count: number): void {
    // Assigned inside the forward pass: the new values do not lead to the loss, so the gradient ignores them.
    const momentum = this.momentumOverride === 'cumulative' ? 1 / (this.cumulativeBatches + 1) : BN_MOMENTUM;
    const unbiased = count > 1 ? count / (count - 1) : 1;
    tf.tidy(() => {
      n.runningMean.assign(tf.add(tf.mul(n.runningMean, 1 - momentum), tf.mul(mean, momentum)));
      n.runningVar.assign(tf.add(tf.mul(n.runningVar, 1 - momentum), tf.mul(variance, momentum * unbiased)));
    });
  }

  private norms(): TrainableNorm[] {
    return [
      this.norm0,
      ...this.blocks.flat().flatMap((l) => [l.norm1, l.norm2]),
      ...this.transitions.map((t) => t.norm),
      this.norm5,
    ];
  }

  private convs(): tf.Variable[] {
    return [...this.blocks.flat().flatMap((l) => [l.conv1, l.conv2]), ...this.transitions.map((t) => t.conv)];
  }

  private allVariables(): tf.Variable[] {
    const norms = this.norms();
    return [
      this.conv0,
      ...this.convs(),
      ...norms.flatMap((n) => [n.gamma, n.beta, n.runningMean, n.runningVar]),
      this.classifierWeight,
      this.classifierBias,
    ];
  }
}

function tensorOf(t: HostTensor): tf.Tensor {
  return tf.tensor(t.data, t.shape, 'float32');
}

function hostOf(t: tf.Tensor): HostTensor {
  const out = { shape: [...t.shape], data: t.dataSync() as Float32Array };
  t.dispose();
  return out;
}
