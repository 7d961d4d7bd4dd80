import { z } from 'zod';
import { DEFAULT_TRANSFER_SYNTAXES, isKnownTransferSyntax } from '../dicom/transfer-syntaxes.js';
import { DEFAULT_STORAGE_SOP_CLASSES } from '../dicom/sop-classes.js';
import { isValidUid } from '../dicom/uids.js';
import { BACKEND_ORDER } from '../inference/backend.js';
import { DEFAULT_ELIGIBILITY } from '../inference/eligibility.js';
import { lrpOptionsSchema } from '../lrp/composites.js';

// AE titles are at most 16 characters of the default character repertoire, without backslash or
// control characters; leading/trailing spaces are not significant (PS3.5 6.2).
const aeTitle = z
  .string()
  .transform((s) => s.trim())
  .pipe(
    z
      .string()
      .min(1, 'an AE title must not be empty')
      .max(16, 'an AE title has at most 16 characters')
      .regex(/^[\x20-\x5b\x5d-\x7e]+$/, 'an AE title uses printable ASCII without backslash'),
  );

const uid = z.string().refine(isValidUid, 'must be a DICOM UID: digits and dots, at most 64 characters');

const allowedCaller = z
  .object({
    aeTitle,
    host: z
      .string()
      .min(1)
      .optional()
      .describe('IP address the caller must connect from; any address when left out'),
  })
  .strict();

export const dicomSchema = z
  .object({
    aeTitle: aeTitle.default('CXR_GATEWAY'),
    host: z.string().min(1).default('127.0.0.1'),
    port: z.number().int().min(1).max(65535).default(11112),
    maxPduLength: z.number().int().min(4096).max(4 * 1024 * 1024).default(262144),
    maxAssociations: z.number().int().min(1).max(1000).default(16),
    associationRequestTimeoutSeconds: z.number().positive().max(3600).default(30),
    idleTimeoutSeconds: z.number().positive().max(86400).default(60),
    shutdownGraceSeconds: z.number().min(0).max(600).default(30),
    callers: z
      .object({
        allowAny: z.boolean().default(true),
        allowed: z.array(allowedCaller).default([]),
      })
      .strict()
      .default({ allowAny: true, allowed: [] }),
    acceptedSopClasses: z.array(uid).min(1).default([...DEFAULT_STORAGE_SOP_CLASSES]),
    transferSyntaxes: z
      .array(uid.refine(isKnownTransferSyntax, 'is not a transfer syntax this gateway can store'))
      .min(1)
      .default([...DEFAULT_TRANSFER_SYNTAXES]),
  })
  .strict();

export const storageSchema = z
  .object({
    dataDir: z.string().min(1).default('var'),
    minFreeDiskMB: z.number().min(0).default(1024),
  })
  .strict();

export const assemblySchema = z
  .object({
    quietPeriodSeconds: z.number().min(0).max(86400).default(10),
  })
  .strict();

export const inferenceSchema = z
  .object({
    model: z.string().min(1).default('models/demo'),
    backend: z.enum(['auto', ...BACKEND_ORDER]).default('auto'),
    workers: z.union([z.literal('auto'), z.number().int().min(1).max(64)]).default('auto'),
    maxBatch: z.number().int().min(1).max(64).default(8),
    maxWaitMs: z.number().int().min(0).max(60000).default(50),
    eligibility: z
      .object({
        modalities: z.array(z.string().min(1)).min(1).default([...DEFAULT_ELIGIBILITY.modalities]),
        bodyParts: z.array(z.string().min(1)).min(1).default([...DEFAULT_ELIGIBILITY.bodyParts]),
        viewPositions: z.array(z.string().min(1)).min(1).default([...DEFAULT_ELIGIBILITY.viewPositions]),
      })
      .strict()
      .default(() => ({
        modalities: [...DEFAULT_ELIGIBILITY.modalities],
        bodyParts: [...DEFAULT_ELIGIBILITY.bodyParts],
        viewPositions: [...DEFAULT_ELIGIBILITY.viewPositions],
      })),
  })
  .strict();

export const explainSchema = lrpOptionsSchema.extend({
  /** Which class each heatmap explains: the predicted one, a named class, or every class. */
  target: z.union([z.enum(['predicted', 'all']), z.string().min(1)]).default('predicted'),
});

export const loggingSchema = z
  .object({
    level: z.enum(['error', 'warn', 'info', 'debug']).default('info'),
    format: z.enum(['auto', 'json', 'pretty']).default('auto'),
  })
  .strict();

export const configSchema = z
  .object({
    dicom: dicomSchema.default(() => dicomSchema.parse({})),
    storage: storageSchema.default(() => storageSchema.parse({})),
    assembly: assemblySchema.default(() => assemblySchema.parse({})),
    inference: inferenceSchema.default(() => inferenceSchema.parse({})),
    explain: explainSchema.default(() => explainSchema.parse({})),
    logging: loggingSchema.default(() => loggingSchema.parse({})),
  })
  .strict();

export type GatewayConfig = z.infer<typeof configSchema>;
export type DicomConfig = GatewayConfig['dicom'];
export type AllowedCaller = z.infer<typeof allowedCaller>;
