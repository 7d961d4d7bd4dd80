import { readFileSync } from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { z } from 'zod';
import { GatewayError, describeError } from '../errors.js';
import { BACKEND_ORDER } from '../inference/backend-types.js';
import { DENSENET_VARIANTS } from '../inference/densenet-architecture.js';
import { preprocessingSchema } from '../imaging/preprocessing-spec.js';
import { labelsCsvSourceSchema } from './labels-csv-dataset.js';
import { NIH_LABELS, nihSourceSchema } from './nih-chestxray14.js';
import { stageTrainingSchema } from './stage-trainer.js';

/** The seed paper's target classes, in the order its network (and our manifests) put them. */
export const TARGET_CLASSES = ['COVID-19', 'pneumonia', 'normal'] as const;

const architectureSchema = z.union([
  z.object({ variant: z.enum(Object.keys(DENSENET_VARIANTS) as [keyof typeof DENSENET_VARIANTS]) }).strict(),
  z
    .object({
      growthRate: z.number().int().min(1),
      blockConfig: z.array(z.number().int().min(1)).min(1).max(8),
      numInitFeatures: z.number().int().min(1),
      bnSize: z.number().int().min(1).default(4),
    })
    .strict(),
]);

export const dataSourceSchema = z.discriminatedUnion('format', [labelsCsvSourceSchema, nihSourceSchema]);
export type DataSource = z.infer<typeof dataSourceSchema>;

/**
 * `cxr-gateway train`: the seed paper's twice transfer learning.
 * Stage 1 is the starting point (ImageNet weights where the site has them, else Kaiming initialisation),
 * stage 2 (`intermediate`, optional) fine-tunes on a multi-label findings task in the NIH ChestX-ray14
 * style, stage 3 (`target`) fine-tunes on the 3 classes, keeping the output neurons of classes both tasks
 * share.
 */
export const trainingConfigSchema = z
  .object({
    /** Every random choice (initialisation, split, order, augmentation) derives from it. */
    seed: z.number().int().min(0).default(1),
    /** wasm by default: the portable backend that our convolution gradients make fast enough. */
    backend: z.enum(['auto', ...BACKEND_ORDER]).default('wasm'),
    /** The model directory to write (must not exist, or be empty). */
    output: z.string().min(1),
    /** Memory for preprocessed images; images beyond it are decoded again each epoch. */
    cacheMegabytes: z.number().int().min(0).default(2048),
    model: z
      .object({
        name: z.string().min(1),
        version: z.string().min(1).default('1.0.0'),
        architecture: architectureSchema,
        preprocessing: preprocessingSchema.default(() => preprocessingSchema.parse({ inputSize: 224 })),
        intendedUse: z.string().min(1),
        description: z.string().optional(),
      })
      .strict(),
    /** Stage 1: a torchvision state_dict (safetensors), e.g. ImageNet-pretrained; absent: Kaiming initialisation. */
    initialWeights: z
      .object({
        file: z.string().min(1),
        /** Names of its outputs, when a later stage should keep some (read from the file's metadata when it has them). */
        classes: z.array(z.string().min(1)).optional(),
      })
      .strict()
      .optional(),
    intermediate: z
      .object({
        data: dataSourceSchema,
        classes: z
          .array(z.string().min(1))
          .min(1)
          .default([...NIH_LABELS]),
        training: stageTrainingSchema.default(() => stageTrainingSchema.parse({})),
        /** Also write the stage-2 network (with its class names) as intermediate.safetensors in the output. */
        saveCheckpoint: z.boolean().default(true),
      })
      .strict()
      .optional(),
    target: z
      .object({
        data: labelsCsvSourceSchema,
        classes: z
          .array(z.string().min(1))
          .min(2)
          .default([...TARGET_CLASSES]),
        /** Output neuron keeping; false starts the whole head fresh (for comparison). */
        keepOutputNeurons: z.boolean().default(true),
        /** Target class -> previous stage's class whose neuron it keeps, where the names differ. */
        outputNeuronMap: z.record(z.string(), z.string()).optional(),
        training: stageTrainingSchema.default(() => stageTrainingSchema.parse({})),
      })
      .strict(),
  })
  .strict();

export type TrainingConfig = z.infer<typeof trainingConfigSchema>;

/** Validates a config object; paths in it are taken relative to `baseDir`. */
export function parseTrainingConfig(raw: unknown, baseDir: string, source: string): TrainingConfig {
  const parsed = trainingConfigSchema.safeParse(raw);
  if (!parsed.success) {
    const issues = parsed.error.issues
      .map((i) => `${i.path.map(String).join('.') || '(top level)'}: ${i.message}`)
      .join('; ');
    throw new GatewayError('TRAINING_CONFIG_INVALID', `${source}: ${issues}`);
  }
  const config = parsed.data;
  const at = (p: string) => path.resolve(baseDir, p);
  config.output = at(config.output);
  if (config.initialWeights) config.initialWeights.file = at(config.initialWeights.file);
  if (config.intermediate) config.intermediate.data.dir = at(config.intermediate.data.dir);
  config.target.data.dir = at(config.target.data.dir);
  return config;
}

/** Reads a YAML or JSON training config file. */
export function readTrainingConfig(file: string): unknown {
  try {
    return YAML.parse(readFileSync(file, 'utf8')) as unknown;
  } catch (error) {
    throw new GatewayError(
      'TRAINING_CONFIG_INVALID',
      `cannot read the training config ${file}: ${describeError(error)}`,
    );
  }
}
