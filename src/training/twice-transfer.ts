import * as tf from '@tensorflow/tfjs';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync, appendFileSync } from 'node:fs';
import path from 'node:path';
import { GatewayError } from '../errors.js';
import { selectBackend } from '../inference/backend.js';
import { namedDenseNet, type DenseNetArchitecture } from '../inference/densenet-architecture.js';
import { loadModel } from '../inference/model-loader.js';
import { readSafetensors } from '../inference/safetensors.js';
import { checkDenseNetWeights, normaliseParameterNames, type HostTensor } from '../inference/weight-import.js';
import { ImageBank } from './image-bank.js';
import { kaimingDenseNetWeights } from './kaiming-init.js';
import { readLabelsCsvDataset } from './labels-csv-dataset.js';
import type { LabelledDataset } from './labelled-image.js';
import { writeModelDirectory, stateDictBytes } from './model-writer.js';
import { readNihDataset } from './nih-chestxray14.js';
import { keepOutputNeurons, type KeptNeuron } from './output-neuron-keeping.js';
import { SeededRandom } from './random.js';
import {
  trainStage,
  type EpochRecord,
  type StageProgress,
  type StageResult,
  type StageTraining,
} from './stage-trainer.js';
import { TrainableDenseNet } from './trainable-densenet.js';
import type { DataSource, TrainingConfig } from './training-config.js';

export const TRAINING_LOG_FILE = 'training-log.jsonl';
export const METRICS_FILE = 'metrics.json';
export const INTERMEDIATE_FILE = 'intermediate.safetensors';

/** Every line of training-log.jsonl is one of these (and goes to `onRecord` as it happens). */
export type TrainingRecord =
  | {
      type: 'start';
      seed: number;
      backend: string;
      output: string;
      architecture: DenseNetArchitecture;
      preprocessing: TrainingConfig['model']['preprocessing'];
    }
  | { type: 'init'; stage: 'initial'; source: 'file' | 'kaiming'; file?: string; classes: number; message: string }
  | { type: 'data'; stage: string; description: string; images: number; classes: string[]; secondsToLoad: number }
  | { type: 'head'; stage: string; classes: string[]; kept: KeptNeuron[]; fresh: string[] }
  | EpochRecord
  | {
      type: 'stage-end';
      stage: string;
      bestEpoch: number;
      stoppedEarly: boolean;
      seconds: number;
      final?: StageResult['final'];
    }
  | {
      type: 'model';
      dir: string;
      modelUid: string;
      sha256: string;
      weightsBytes: number;
      exportCheck: { images: number; maxLogitDifference: number };
    };

export interface TrainingEvents {
  onRecord?: (record: TrainingRecord) => void;
  onProgress?: (progress: StageProgress | { stage: string; loading: number; of: number }) => void;
}

export interface StageHead {
  stage: string;
  classes: string[];
  /** The classifier the stage started from, torchvision layout ([classes, features], [classes]). */
  weight: HostTensor;
  bias: HostTensor;
  kept: KeptNeuron[];
}

export interface TrainingOutcome {
  dir: string;
  modelUid: string;
  stages: StageResult[];
  /** The head each stage started from: where output neuron keeping can be inspected. */
  heads: StageHead[];
  kept: KeptNeuron[];
}

/** Runs the configured stages and writes the model directory. */
export async function runTwiceTransfer(config: TrainingConfig, events: TrainingEvents = {}): Promise<TrainingOutcome> {
  prepareOutput(config.output);
  const logFile = path.join(config.output, TRAINING_LOG_FILE);
  const emit = (record: TrainingRecord) => {
    appendFileSync(logFile, `${JSON.stringify(record)}\n`);
    events.onRecord?.(record);
  };
  const backend = await selectBackend(config.backend);
  const random = new SeededRandom(config.seed);
  const target = config.target;
  const base = resolveArchitecture(config, target.classes.length);
  emit({
    type: 'start',
    seed: config.seed,
    backend: backend.name,
    output: config.output,
    architecture: base,
    preprocessing: config.model.preprocessing,
  });

  // Stage 1: the starting weights.
  const initial = initialNetwork(config, base, random.fork());
  emit(initial.record);
  const net = initial.net;
  let headClasses = initial.classes;
  const stages: StageResult[] = [];
  const heads: StageHead[] = [];
  let kept: KeptNeuron[] = [];
  try {
    // Stage 2: the intermediate findings task.
    if (config.intermediate) {
      const stage = config.intermediate;
      const dataset = readDataset(stage.data, stage.classes, 'multi-label');
      heads.push(replaceHead(net, headClasses, dataset.classes, true, undefined, random.fork(), 'intermediate', emit));
      headClasses = dataset.classes;
      stages.push(await runStage('intermediate', net, dataset, stage.training, config, random.fork(), emit, events));
      if (stage.saveCheckpoint)
        writeFileSync(
          path.join(config.output, INTERMEDIATE_FILE),
          stateDictBytes(net.exportHostWeights(), headClasses),
        );
    }
    // Stage 3: the target classes, keeping the output neurons of shared classes.
    const dataset = readDataset(target.data, target.classes, 'single-label');
    const head = replaceHead(
      net,
      headClasses,
      dataset.classes,
      target.keepOutputNeurons,
      target.outputNeuronMap,
      random.fork(),
      'target',
      emit,
    );
    heads.push(head);
    kept = head.kept;
    const result = await runStage('target', net, dataset, target.training, config, random.fork(), emit, events);
    stages.push(result);

    const model = writeModelDirectory(
      config.output,
      {
        name: config.model.name,
        version: config.model.version,
        architecture: net.architecture,
        classes: dataset.classes,
        preprocessing: config.model.preprocessing,
        intendedUse: config.model.intendedUse,
        ...(config.model.description === undefined ? {} : { description: config.model.description }),
      },
      net.exportHostWeights(),
    );
    const exportCheck = await checkExport(config.output, net, dataset, config);
    emit({
      type: 'model',
      dir: config.output,
      modelUid: model.modelUid,
      sha256: model.weights.sha256,
      weightsBytes: readFileSync(path.join(config.output, model.weights.file)).length,
      exportCheck,
    });
    writeFileSync(
      path.join(config.output, METRICS_FILE),
      `${JSON.stringify(
        {
          modelUid: model.modelUid,
          seed: config.seed,
          backend: backend.name,
          keptOutputNeurons: kept,
          stages: stages.map((s) => ({
            stage: s.stage,
            trainImages: s.trainImages,
            validationImages: s.validationImages,
            epochsRun: s.epochs.length,
            bestEpoch: s.bestEpoch,
            stoppedEarly: s.stoppedEarly,
            seconds: s.seconds,
            secondsPerEpoch: s.epochs.reduce((a, e) => a + e.seconds, 0) / Math.max(1, s.epochs.length),
            firstEpochValidation: s.epochs[0]?.validation,
            finalValidation: s.final,
          })),
        },
        null,
        2,
      )}\n`,
    );
    return { dir: config.output, modelUid: model.modelUid, stages, heads, kept };
  } finally {
    net.dispose();
  }
}

function prepareOutput(dir: string): void {
  if (existsSync(dir) && readdirSync(dir).length > 0) {
    throw new GatewayError(
      'TRAINING_OUTPUT_EXISTS',
      `the output folder ${dir} is not empty; choose a new folder so that no model is overwritten`,
    );
  }
  mkdirSync(dir, { recursive: true });
}

function resolveArchitecture(config: TrainingConfig, numClasses: number): DenseNetArchitecture {
  const a = config.model.architecture;
  if ('variant' in a) return namedDenseNet(a.variant, numClasses);
  return {
    family: 'densenet',
    growthRate: a.growthRate,
    blockConfig: [...a.blockConfig],
    numInitFeatures: a.numInitFeatures,
    bnSize: a.bnSize,
    numClasses,
  };
}

function initialNetwork(
  config: TrainingConfig,
  base: DenseNetArchitecture,
  random: SeededRandom,
): { net: TrainableDenseNet; classes: string[]; record: Extract<TrainingRecord, { type: 'init' }> } {
  const spec = config.initialWeights;
  if (!spec) {
    const net = TrainableDenseNet.fromHostWeights(base, kaimingDenseNetWeights(base, random));
    return {
      net,
      classes: [],
      record: {
        type: 'init',
        stage: 'initial',
        source: 'kaiming',
        classes: base.numClasses,
        message:
          'no initial weights given: random initialisation as torchvision (Kaiming-normal convolutions, BN 1/0), not ImageNet-pretrained',
      },
    };
  }
  const file = readSafetensors(readFileSync(spec.file), spec.file);
  const raw = normaliseParameterNames(new Map<string, HostTensor>(file.tensors));
  const classifier = raw.get('classifier.weight');
  if (!classifier || classifier.shape.length !== 2) {
    throw new GatewayError(
      'WEIGHTS_MISMATCH',
      `${spec.file}: no classifier.weight; is it a torchvision DenseNet state_dict?`,
    );
  }
  const arch = { ...base, numClasses: classifier.shape[0] ?? 0 };
  const weights = checkDenseNetWeights(raw, arch, spec.file);
  const classes = spec.classes ?? parseClassesMetadata(file.metadata['classes']) ?? [];
  if (classes.length > 0 && classes.length !== arch.numClasses) {
    throw new GatewayError(
      'TRAINING_CONFIG_INVALID',
      `initialWeights.classes lists ${classes.length} names but ${spec.file} has ${arch.numClasses} outputs`,
    );
  }
  return {
    net: TrainableDenseNet.fromHostWeights(arch, weights),
    classes,
    record: {
      type: 'init',
      stage: 'initial',
      source: 'file',
      file: spec.file,
      classes: arch.numClasses,
      message: `initial weights from ${spec.file}`,
    },
  };
}

function parseClassesMetadata(value: string | undefined): string[] | undefined {
  if (value === undefined) return undefined;
  try {
    const parsed = JSON.parse(value) as unknown;
    return Array.isArray(parsed) && parsed.every((c) => typeof c === 'string') ? (parsed as string[]) : undefined;
  } catch {
    return undefined;
  }
}

function readDataset(source: DataSource, classes: readonly string[], kind: LabelledDataset['kind']): LabelledDataset {
  if (source.format === 'nih-chestxray14') return readNihDataset(source);
  return readLabelsCsvDataset(source, kind, classes);
}

function replaceHead(
  net: TrainableDenseNet,
  previousClasses: readonly string[],
  classes: readonly string[],
  keep: boolean,
  map: Readonly<Record<string, string>> | undefined,
  random: SeededRandom,
  stage: string,
  emit: (r: TrainingRecord) => void,
): StageHead {
  const previous = net.classifier();
  // A head without class names (random initialisation, an unnamed checkpoint) shares nothing with the new task.
  const named = previousClasses.length === previous.weight.shape[0];
  const names = named
    ? previousClasses
    : Array.from({ length: previous.weight.shape[0] ?? 0 }, (_, i) => `output ${i}`);
  const head = keepOutputNeurons({ ...previous, classes: names }, classes, random, {
    keep: keep && named,
    ...(map ? { map } : {}),
  });
  net.replaceClassifier(head.weight, head.bias);
  const keptNames = new Set(head.kept.map((k) => k.target));
  emit({
    type: 'head',
    stage,
    classes: [...classes],
    kept: head.kept,
    fresh: classes.filter((c) => !keptNames.has(c)),
  });
  return { stage, classes: [...classes], weight: head.weight, bias: head.bias, kept: head.kept };
}

async function runStage(
  stage: string,
  net: TrainableDenseNet,
  dataset: LabelledDataset,
  training: StageTraining,
  config: TrainingConfig,
  random: SeededRandom,
  emit: (r: TrainingRecord) => void,
  events: TrainingEvents,
): Promise<StageResult> {
  const started = performance.now();
  const bank = new ImageBank(dataset.images, config.model.preprocessing, config.cacheMegabytes * 1024 * 1024);
  await bank.warm((done, of) => events.onProgress?.({ stage, loading: done, of }));
  emit({
    type: 'data',
    stage,
    description: dataset.description,
    images: dataset.images.length,
    classes: dataset.classes,
    secondsToLoad: (performance.now() - started) / 1000,
  });
  const result = await trainStage({
    stage,
    net,
    dataset,
    bank,
    training,
    random,
    onEpoch: emit,
    ...(events.onProgress ? { onProgress: events.onProgress } : {}),
  });
  emit({
    type: 'stage-end',
    stage,
    bestEpoch: result.bestEpoch,
    stoppedEarly: result.stoppedEarly,
    seconds: result.seconds,
    ...(result.final ? { final: result.final } : {}),
  });
  return result;
}

/**
 * Loads the written directory the way the gateway does (checksum, names, shapes, inference DenseNet) and
 * compares its logits with the trained network's on a few images: the export is proven, not assumed.
 */
async function checkExport(
  dir: string,
  net: TrainableDenseNet,
  dataset: LabelledDataset,
  config: TrainingConfig,
): Promise<{ images: number; maxLogitDifference: number }> {
  const loaded = loadModel(dir);
  const bank = new ImageBank(dataset.images.slice(0, 4), config.model.preprocessing, 0);
  const { x, y } = await bank.batch(Array.from({ length: Math.min(4, dataset.images.length) }, (_, i) => i));
  const [a, b] = [loaded.network.logits(x), net.logits(x, { training: false })];
  const [da, db] = await Promise.all([a.data(), b.data()]);
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < da.length; i += 1) {
    diff = Math.max(diff, Math.abs((da[i] ?? 0) - (db[i] ?? 0)));
    scale = Math.max(scale, Math.abs(db[i] ?? 0));
  }
  tf.dispose([x, y, a, b]);
  loaded.network.dispose();
  if (diff > 1e-3 * Math.max(1, scale)) {
    throw new GatewayError(
      'TRAINING_EXPORT_MISMATCH',
      `the exported model's logits differ from the trained network's by ${diff}; the export is wrong, do not use ${dir}`,
    );
  }
  return { images: da.length / dataset.classes.length, maxLogitDifference: diff };
}
