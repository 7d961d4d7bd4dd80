import { z } from 'zod';
import type { ImageWorkResult } from './image-work.js';

type Written = Extract<ImageWorkResult, { kind: 'written' }>;

const classificationSchema = z.object({
  classes: z.array(z.string()),
  probabilities: z.array(z.number()),
  logits: z.array(z.number()),
  predicted: z.string(),
});

const explanationFactsSchema = z.object({
  targetClass: z.string(),
  composite: z.string(),
  parameters: z.string().optional(),
  logit: z.number(),
  relevanceSum: z.number(),
  absorbedShare: z.number(),
});

const outputObjectSchema = z.object({
  kind: z.enum(['sc', 'sr']),
  path: z.string().min(1),
  sopClassUid: z.string().min(1),
  sopInstanceUid: z.string().min(1),
  seriesInstanceUid: z.string().min(1),
  downscaled: z
    .object({
      from: z.object({ rows: z.number(), columns: z.number() }),
      to: z.object({ rows: z.number(), columns: z.number() }),
      maxBytes: z.number(),
    })
    .optional(),
});

const stageMsSchema = z.object({
  decode: z.number().optional(),
  explain: z.number().optional(),
  write: z.number().optional(),
  pacs: z.number().optional(),
  ris: z.number().optional(),
});

/**
 * A written image's result as the pipeline stores it in job_images.result (JSON) and reads it back when it
 * builds the job's deliveries and report. `satisfies` keeps it in step with ImageWorkResult: a field added
 * there and not here fails the build.
 */
export const writtenImageResultSchema = z.object({
  sopInstanceUid: z.string().min(1),
  kind: z.literal('written'),
  classification: classificationSchema,
  explanation: explanationFactsSchema,
  model: z.object({ modelUid: z.string().min(1), version: z.string() }).optional(),
  outputs: z.array(outputObjectSchema),
  stageMs: stageMsSchema,
}) satisfies z.ZodType<Written>;
