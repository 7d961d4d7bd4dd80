import { z } from 'zod';
import type { KeyAttributes } from './dataset-walker.js';

/** KeyAttributes as stored in the job store's instances.attributes column (JSON), read back through this. */
export const keyAttributesSchema = z.object({
  sopClassUid: z.string().optional(),
  sopInstanceUid: z.string().optional(),
  studyInstanceUid: z.string().optional(),
  seriesInstanceUid: z.string().optional(),
  modality: z.string().optional(),
  bodyPartExamined: z.string().optional(),
  viewPosition: z.string().optional(),
  accessionNumber: z.string().optional(),
  studyDate: z.string().optional(),
  instanceNumber: z.string().optional(),
}) satisfies z.ZodType<KeyAttributes>;
