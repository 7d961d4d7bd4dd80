import { z } from 'zod';
import type { DeliveryPayload } from './delivery-target.js';

/** DeliveryPayload as stored in the job store's deliveries.payload column (JSON), read back through this. */
export const deliveryPayloadSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('pacs'), files: z.array(z.string().min(1)) }),
  z.object({ kind: z.literal('ris'), file: z.string().min(1), controlId: z.string().min(1) }),
]) satisfies z.ZodType<DeliveryPayload>;
