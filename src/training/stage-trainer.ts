import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { augmentationSchema } from './augmentation.js';
import type { ImageBank } from './image-bank.js';
import type { LabelledDataset } from './labelled-image.js';
import { taskLoss, taskProbabilities } from './losses.js';
import { taskMetrics, type TaskMetrics } from './metrics.js';
import { Optimiser, optimiserSchema } from './optimiser.js';
import type { SeededRandom } from './random.js';
import type { TrainableDenseNet } from './trainable-densenet.js';
import { GatewayError } from '../errors.js';

export const stageTrainingSchema = z
  .object({
    optimiser: optimiserSchema.default(() => optimiserSchema.parse({})),
    epochs: z.number().int().min(1).default(10),
    batchSize: z.number().int().min(2).default(16),
    /** Share of the images (whole patients) held out for validation; 0: no validation, no early stopping. */
    validationSplit: z.number().min(0).max(0.9).default(0.2),
    /** Stop when the monitored validation figure has not improved for `patience` epochs; the best epoch's weights are kept. */
    earlyStopping: z
      .object({
        patience: z.number().int().min(1).default(5),
        monitor: z.enum(['val-loss', 'val-accuracy']).default('val-loss'),
        minDelta: z.number().min(0).default(0),
      })
      .strict()
      .optional(),
    augmentation: augmentationSchema.default(() => augmentationSchema.parse({})),
    /** See TrainableDenseNet: batch statistics (PyTorch's train mode) or frozen running statistics. */
    batchNorm: z.enum(['batch-statistics', 'frozen-statistics']).default('batch-statistics'),
    /**
     * Before each validation and at the end, recompute BN running statistics from up to this many
     * unaugmented training batches (0: keep the momentum-averaged ones).
     */
    recalibrationBatches: z.number().int().min(0).default(16),
    /** Cap on optimiser steps per epoch (quick trials and tests); default: the whole training split. */
    maxStepsPerEpoch: z.number().int().min(1).optional(),
  })
  .strict();

export type StageTraining = z.infer<typeof stageTrainingSchema>;

export interface EpochRecord {
  type: 'epoch';
  stage: string;
  epoch: number;
  epochs: number;
  learningRate: number;
  train: { loss: number; accuracy: number };
  validation?: TaskMetrics;
  seconds: number;
  imagesPerSecond: number;
  /** Whether this epoch is the best so far by the monitored figure (the weights kept). */
  best: boolean;
}

export interface StageResult {
  stage: string;
  epochs: EpochRecord[];
  bestEpoch: number;
  stoppedEarly: boolean;
  trainImages: number;
  validationImages: number;
  /** Validation metrics of the kept weights (after the final BN recalibration). */
  final?: TaskMetrics;
  seconds: number;
}

export interface StageProgress {
  stage: string;
  epoch: number;
  epochs: number;
  step: number;
  steps: number;
  loss: number;
}

export interface StageRun {
  stage: string;
  net: TrainableDenseNet;
  dataset: LabelledDataset;
  bank: ImageBank;
  training: StageTraining;
  random: SeededRandom;
  onEpoch?: (record: EpochRecord) => void;
  onProgress?: (progress: StageProgress) => void;
}

/** One transfer stage: train the network (head already in place) on one labelled dataset. */
export async function trainStage(run: StageRun): Promise<StageResult> {
  const { net, dataset, bank, training, stage } = run;
  const started = performance.now();
  const split = splitByGroup(dataset, training.validationSplit, run.random.fork());
  const shuffleRandom = run.random.fork();
  const augmentRandom = run.random.fork();
  const optimiser = new Optimiser(training.optimiser);
  net.batchNorm = training.batchNorm;
  const variables = net.trainableVariables();
  const monitor = training.earlyStopping?.monitor ?? 'val-loss';
  const records: EpochRecord[] = [];
  let best = { score: Number.POSITIVE_INFINITY, epoch: 0, snapshot: undefined as Float32Array[] | undefined };
  let stoppedEarly = false;

  for (let epoch = 1; epoch <= training.epochs; epoch += 1) {
    const epochStart = performance.now();
    optimiser.learningRate = optimiser.learningRateAt(epoch - 1, training.epochs);
    const order = shuffleRandom.shuffle([...split.train]);
    const batches = chunk(order, training.batchSize).filter((b) => b.length >= 2); // BN needs 2+ images
    const steps = Math.min(batches.length, training.maxStepsPerEpoch ?? Number.POSITIVE_INFINITY);
    let lossSum = 0;
    let correct = 0;
    let seen = 0;
    for (let s = 0; s < steps; s += 1) {
      const indices = batches[s] ?? [];
      const { x, y } = await bank.batch(indices, { spec: training.augmentation, random: augmentRandom });
      let logits: tf.Tensor2D | undefined;
      const { value, grads } = tf.variableGrads(() => {
        const l = net.logits(x, { training: true });
        logits = tf.keep(l);
        return taskLoss(dataset.kind, l, y);
      }, variables);
      optimiser.apply(
        variables,
        variables.map((v) => grads[v.name] as tf.Tensor),
      );
      const loss = (await value.data())[0] ?? Number.NaN;
      if (!Number.isFinite(loss))
        throw new GatewayError(
          'TRAINING_DIVERGED',
          `${stage}: the loss became ${loss} at epoch ${epoch}, step ${s + 1}; lower the learning rate`,
        );
      if (logits) correct += await countCorrect(dataset.kind, logits, y);
      lossSum += loss * indices.length;
      seen += indices.length;
      tf.dispose([x, y, value, logits, ...Object.values(grads)]);
      run.onProgress?.({ stage, epoch, epochs: training.epochs, step: s + 1, steps, loss: lossSum / seen });
    }
    let validation: TaskMetrics | undefined;
    if (split.validation.length > 0) {
      await recalibrate(net, bank, split.train, training);
      validation = await evaluate(net, bank, dataset, split.validation, training.batchSize);
    }
    const score = validation ? (monitor === 'val-loss' ? validation.loss : -validation.accuracy) : lossSum / seen;
    const improved = score < best.score - (training.earlyStopping?.minDelta ?? 0);
    if (improved) best = { score, epoch, snapshot: net.snapshot() };
    const seconds = (performance.now() - epochStart) / 1000;
    const record: EpochRecord = {
      type: 'epoch',
      stage,
      epoch,
      epochs: training.epochs,
      learningRate: optimiser.learningRate,
      train: { loss: lossSum / seen, accuracy: correct / seen },
      ...(validation ? { validation } : {}),
      seconds,
      imagesPerSecond: seen / seconds,
      best: improved,
    };
    records.push(record);
    run.onEpoch?.(record);
    if (training.earlyStopping && validation && epoch - best.epoch >= training.earlyStopping.patience) {
      stoppedEarly = epoch < training.epochs;
      break;
    }
  }
  optimiser.dispose();
  if (best.snapshot) net.restore(best.snapshot);
  await recalibrate(net, bank, split.train, training);
  const final =
    split.validation.length > 0 ? await evaluate(net, bank, dataset, split.validation, training.batchSize) : undefined;
  return {
    stage,
    epochs: records,
    bestEpoch: best.epoch,
    stoppedEarly,
    trainImages: split.train.length,
    validationImages: split.validation.length,
    ...(final ? { final } : {}),
    seconds: (performance.now() - started) / 1000,
  };
}

/** Validation metrics of the network in inference mode (running statistics), no augmentation. */
export async function evaluate(
  net: TrainableDenseNet,
  bank: ImageBank,
  dataset: LabelledDataset,
  indices: readonly number[],
  batchSize: number,
): Promise<TaskMetrics> {
  const c = dataset.classes.length;
  const probabilities = new Float32Array(indices.length * c);
  const targets = new Float32Array(indices.length * c);
  let lossSum = 0;
  let offset = 0;
  for (const part of chunk([...indices], batchSize)) {
    const { x, y } = await bank.batch(part);
    const [loss, p] = tf.tidy(() => {
      const logits = net.logits(x, { training: false });
      return [taskLoss(dataset.kind, logits, y), taskProbabilities(dataset.kind, logits)];
    });
    lossSum += ((await loss.data())[0] ?? Number.NaN) * part.length;
    probabilities.set(await p.data(), offset * c);
    targets.set(await y.data(), offset * c);
    offset += part.length;
    tf.dispose([x, y, loss, p]);
  }
  return taskMetrics(dataset.kind, dataset.classes, probabilities, targets, lossSum);
}

async function recalibrate(
  net: TrainableDenseNet,
  bank: ImageBank,
  train: readonly number[],
  training: StageTraining,
): Promise<void> {
  if (training.recalibrationBatches === 0 || training.batchNorm === 'frozen-statistics') return;
  const batches: tf.Tensor4D[] = [];
  for (const part of chunk([...train], training.batchSize)
    .filter((b) => b.length >= 2)
    .slice(0, training.recalibrationBatches)) {
    const { x, y } = await bank.batch(part);
    y.dispose();
    batches.push(x);
  }
  net.recalibrateBatchNorm(batches);
  tf.dispose(batches);
}

async function countCorrect(kind: LabelledDataset['kind'], logits: tf.Tensor2D, y: tf.Tensor2D): Promise<number> {
  const hits = tf.tidy(() => {
    if (kind === 'single-label') return tf.sum(tf.cast(tf.equal(tf.argMax(logits, 1), tf.argMax(y, 1)), 'float32'));
    // Mean per-class binary accuracy per image, summed: comparable with the validation figure.
    return tf.sum(tf.mean(tf.cast(tf.equal(tf.greaterEqual(logits, 0), tf.greaterEqual(y, 0.5)), 'float32'), 1));
  });
  const value = (await hits.data())[0] ?? 0;
  hits.dispose();
  return value;
}

/**
 * Training and validation indices. Whole groups (patients) go to one side, so that no patient is seen in
 * both; groups are stratified by their first image's label (single-label: its class; multi-label: its
 * first finding or none), so that every class is represented in validation where it can be.
 */
export function splitByGroup(
  dataset: LabelledDataset,
  fraction: number,
  random: SeededRandom,
): { train: number[]; validation: number[] } {
  const groups = new Map<string, number[]>();
  dataset.images.forEach((image, i) => {
    const list = groups.get(image.group) ?? [];
    list.push(i);
    groups.set(image.group, list);
  });
  const strata = new Map<number, number[][]>();
  for (const members of groups.values()) {
    const target = dataset.images[members[0] ?? 0]?.target ?? new Float32Array();
    const key = target.findIndex((v) => v >= 0.5);
    const list = strata.get(key) ?? [];
    list.push(members);
    strata.set(key, list);
  }
  const train: number[] = [];
  const validation: number[] = [];
  for (const key of [...strata.keys()].sort((a, b) => a - b)) {
    const list = random.shuffle(strata.get(key) ?? []);
    const held = fraction > 0 ? Math.max(list.length > 1 ? 1 : 0, Math.round(list.length * fraction)) : 0;
    list.forEach((members, i) => (i < held ? validation : train).push(...members));
  }
  return { train: train.sort((a, b) => a - b), validation: validation.sort((a, b) => a - b) };
}

function chunk<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}
