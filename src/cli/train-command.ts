import path from 'node:path';
import { parseArgs } from 'node:util';
import { GatewayError } from '../errors.js';
import { ProgressBar } from '../training/progress-bar.js';
import { parseTrainingConfig, readTrainingConfig } from '../training/training-config.js';
import { runTwiceTransfer, type TrainingRecord } from '../training/twice-transfer.js';

export const TRAIN_USAGE = `cxr-gateway train: twice transfer learning (ImageNet -> findings task -> COVID-19 / pneumonia / normal)

Usage:
  cxr-gateway train --config train.yaml [overrides]
  cxr-gateway train --data DIR --out DIR [--intermediate-data DIR | --nih DIR] [--init FILE] [options]

Data:
  --data DIR               target task: DIR/labels.csv (columns file,class) + the DICOM (or PNG) files
  --intermediate-data DIR  stage 2 from a labels.csv folder (without a config: its 'findings' column lists NIH
                           finding names joined by '|'; with one: the folder of the config's stage-2 source)
  --nih DIR                stage 2 from NIH ChestX-ray14 (DIR/Data_Entry_2017.csv + the PNGs)
  --init FILE              stage 1 weights: a torchvision DenseNet state_dict as safetensors (e.g. ImageNet);
                           without it: Kaiming random initialisation (said so in the log)
Model:
  --out DIR                the model directory to write (new or empty)
  --variant NAME           densenet121 | densenet169 | densenet201 (default densenet201)
  --input-size N           input edge in pixels (default 224)
  --name NAME, --intended-use TEXT
Training (both stages unless the config says otherwise):
  --epochs N, --intermediate-epochs N, --batch-size N, --lr X, --optimizer adam|sgd,
  --validation-split F, --patience N (early stopping), --no-augment, --max-steps N (per epoch),
  --no-keep (fresh 3-class head instead of output neuron keeping), --seed N, --backend wasm|cpu|auto

Per-epoch metrics go to stdout as JSON lines (and to DIR/training-log.jsonl); a progress bar to a terminal.`;

const OPTIONS = {
  config: { type: 'string' },
  out: { type: 'string' },
  data: { type: 'string' },
  'intermediate-data': { type: 'string' },
  nih: { type: 'string' },
  init: { type: 'string' },
  variant: { type: 'string' },
  'input-size': { type: 'string' },
  name: { type: 'string' },
  'intended-use': { type: 'string' },
  epochs: { type: 'string' },
  'intermediate-epochs': { type: 'string' },
  'batch-size': { type: 'string' },
  lr: { type: 'string' },
  optimizer: { type: 'string' },
  'validation-split': { type: 'string' },
  patience: { type: 'string' },
  'max-steps': { type: 'string' },
  'no-augment': { type: 'boolean' },
  'no-keep': { type: 'boolean' },
  seed: { type: 'string' },
  backend: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

type Flags = ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: false }>>['values'];

export interface TrainIo {
  stdout: { write(chunk: string): boolean };
  stderr: { isTTY?: boolean; columns?: number; write(chunk: string): boolean };
}

/** `cxr-gateway train ARGS`: returns the exit code. Takes the raw arguments after `train`. */
export async function train(
  argv: readonly string[],
  io: TrainIo = { stdout: process.stdout, stderr: process.stderr },
): Promise<number> {
  let flags: Flags;
  try {
    flags = parseArgs({ args: [...argv], options: OPTIONS, allowPositionals: false }).values;
  } catch (error) {
    throw new GatewayError('USAGE', `${error instanceof Error ? error.message : String(error)}\n\n${TRAIN_USAGE}`);
  }
  if (flags.help) {
    io.stdout.write(`${TRAIN_USAGE}\n`);
    return 0;
  }
  const { raw, baseDir, source } = assembleConfig(flags);
  const config = parseTrainingConfig(raw, baseDir, source);
  const bar = new ProgressBar(io.stderr);
  const outcome = await runTwiceTransfer(config, {
    onRecord: (record: TrainingRecord) => {
      bar.clear();
      io.stdout.write(`${JSON.stringify(record)}\n`);
    },
    onProgress: (p) => {
      if ('loading' in p) bar.update(`${p.stage}: loading images`, p.loading / p.of, `${p.loading}/${p.of}`);
      else
        bar.update(
          `${p.stage} epoch ${p.epoch}/${p.epochs}`,
          p.step / p.steps,
          `step ${p.step}/${p.steps} loss ${p.loss.toFixed(4)}`,
        );
    },
  });
  bar.clear();
  io.stderr.write(
    `model written to ${outcome.dir} (modelUid ${outcome.modelUid}); check it with: cxr-gateway model check ${outcome.dir}\n`,
  );
  return 0;
}

/** The config file's content (or a fresh one), with the command-line flags laid over it. */
function assembleConfig(flags: Flags): { raw: Record<string, unknown>; baseDir: string; source: string } {
  let raw: Record<string, unknown>;
  let baseDir = process.cwd();
  let source = 'command line';
  if (flags.config !== undefined) {
    const read = readTrainingConfig(flags.config);
    if (typeof read !== 'object' || read === null || Array.isArray(read))
      throw new GatewayError('TRAINING_CONFIG_INVALID', `${flags.config}: expected a mapping at the top level`);
    raw = read as Record<string, unknown>;
    baseDir = path.dirname(path.resolve(flags.config));
    source = flags.config;
  } else {
    if (flags.data === undefined || flags.out === undefined)
      throw new GatewayError(
        'USAGE',
        `train needs --config FILE, or at least --data DIR and --out DIR\n\n${TRAIN_USAGE}`,
      );
    raw = {
      model: {
        name: flags.name ?? 'cxr-densenet',
        architecture: { variant: flags.variant ?? 'densenet201' },
        intendedUse:
          'Research use only: not for diagnostic use. Trained with cxr-gateway train; validate on local data before any use.',
      },
      target: { data: { format: 'labels-csv', dir: flags.data } },
    };
  }
  // Flags are laid over the raw object before validation, so a bad value is reported like a bad config key.
  const cwd = (p: string) => path.resolve(process.cwd(), p);
  const model = object(raw, 'model');
  const target = object(raw, 'target');
  if (flags.out !== undefined) raw['output'] = cwd(flags.out);
  if (flags.data !== undefined && flags.config !== undefined) object(target, 'data')['dir'] = cwd(flags.data);
  if (flags.name !== undefined) model['name'] = flags.name;
  if (flags['intended-use'] !== undefined) model['intendedUse'] = flags['intended-use'];
  if (flags.variant !== undefined) model['architecture'] = { variant: flags.variant };
  if (flags['input-size'] !== undefined)
    object(model, 'preprocessing')['inputSize'] = number(flags['input-size'], '--input-size');
  if (flags.init !== undefined) raw['initialWeights'] = { file: cwd(flags.init) };
  // Stage-2 data: a folder flag replaces only the folder of a source the config file describes, else it
  // brings its format's defaults.
  const intermediateData = (raw['intermediate'] as { data?: { format?: string } } | undefined)?.data;
  if (flags.nih !== undefined) {
    raw['intermediate'] = {
      ...object(raw, 'intermediate'),
      data:
        intermediateData?.format === 'nih-chestxray14'
          ? { ...intermediateData, dir: cwd(flags.nih) }
          : { format: 'nih-chestxray14', dir: cwd(flags.nih) },
    };
  }
  if (flags['intermediate-data'] !== undefined) {
    const dir = cwd(flags['intermediate-data']);
    raw['intermediate'] = {
      ...object(raw, 'intermediate'),
      data:
        intermediateData?.format === 'labels-csv'
          ? { ...intermediateData, dir }
          : { format: 'labels-csv', dir, labelColumn: 'findings', labelMap: { 'No Finding': [] } },
    };
  }
  if (flags.seed !== undefined) raw['seed'] = number(flags.seed, '--seed');
  if (flags.backend !== undefined) raw['backend'] = flags.backend;
  if (flags['no-keep']) target['keepOutputNeurons'] = false;
  const stages = [target, ...(raw['intermediate'] === undefined ? [] : [object(raw, 'intermediate')])];
  for (const stage of stages) {
    const training = object(stage, 'training');
    const optimiser = object(training, 'optimiser');
    if (flags.epochs !== undefined) training['epochs'] = number(flags.epochs, '--epochs');
    if (flags['batch-size'] !== undefined) training['batchSize'] = number(flags['batch-size'], '--batch-size');
    if (flags['validation-split'] !== undefined)
      training['validationSplit'] = number(flags['validation-split'], '--validation-split');
    if (flags['max-steps'] !== undefined) training['maxStepsPerEpoch'] = number(flags['max-steps'], '--max-steps');
    if (flags.patience !== undefined)
      training['earlyStopping'] = {
        ...object(training, 'earlyStopping'),
        patience: number(flags.patience, '--patience'),
      };
    if (flags['no-augment']) training['augmentation'] = { ...object(training, 'augmentation'), enabled: false };
    if (flags.lr !== undefined) optimiser['learningRate'] = number(flags.lr, '--lr');
    if (flags.optimizer !== undefined) optimiser['name'] = flags.optimizer;
  }
  if (flags['intermediate-epochs'] !== undefined && raw['intermediate'] !== undefined) {
    object(object(raw, 'intermediate'), 'training')['epochs'] = number(
      flags['intermediate-epochs'],
      '--intermediate-epochs',
    );
  }
  return { raw, baseDir, source };
}

/** The mapping at `parent[key]`, created when absent (so that flags can fill it). */
function object(parent: Record<string, unknown>, key: string): Record<string, unknown> {
  const value = parent[key];
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) return value as Record<string, unknown>;
  const created: Record<string, unknown> = {};
  parent[key] = created;
  return created;
}

function number(value: string, flag: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n))
    throw new GatewayError('USAGE', `${flag} needs a number, not '${value}'`);
  return n;
}
