import type { KeyAttributes } from '../dicom/dataset-walker.js';
import { keyAttributesSchema } from '../dicom/key-attributes-schema.js';
import type { ImageWorkResult } from '../analysis/image-work.js';
import { writtenImageResultSchema } from '../analysis/image-work-schema.js';
import type { DeliveryPayload } from '../export/delivery-target.js';
import { deliveryPayloadSchema } from '../export/delivery-payload-schema.js';
import { processActionSchema, type ProcessAction } from '../routing/rule-schema.js';
import type { ActiveJob, Delivery, JobImage } from '../store/pipeline-store.js';
import { parseStored } from '../store/stored-json.js';

/**
 * One reader per JSON column of the job store, each through the schema that lives beside its type (the store
 * ranks below analysis and export, so the pipeline, which knows every type, reads them). Each throws a
 * GatewayError STORED_JSON_INVALID that names the column and the row; the pipeline fails that job or parks
 * that delivery with it, and goes on with the others.
 */
export function storedAction(job: Pick<ActiveJob, 'jobId' | 'action'>): ProcessAction {
  return parseStored(processActionSchema, job.action, { column: 'jobs.action', row: `job ${job.jobId}` });
}

export function storedAttributes(instance: { sopInstanceUid: string; attributes: string }): KeyAttributes {
  return parseStored(keyAttributesSchema, instance.attributes, {
    column: 'instances.attributes',
    row: `instance ${instance.sopInstanceUid}`,
  });
}

export function storedResult(
  image: Pick<JobImage, 'jobId' | 'sopInstanceUid' | 'result'>,
): Extract<ImageWorkResult, { kind: 'written' }> {
  return parseStored(writtenImageResultSchema, image.result, {
    column: 'job_images.result',
    row: `job ${image.jobId} image ${image.sopInstanceUid}`,
  });
}

export function storedPayload(delivery: Pick<Delivery, 'id' | 'payload'>): DeliveryPayload {
  return parseStored(deliveryPayloadSchema, delivery.payload, {
    column: 'deliveries.payload',
    row: `delivery ${delivery.id}`,
  });
}
