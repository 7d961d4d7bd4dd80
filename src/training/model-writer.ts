import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { GatewayError } from '../errors.js';
import type { DenseNetArchitecture } from '../inference/densenet-architecture.js';
import { MANIFEST_FILE, manifestSchema, type ModelManifest } from '../inference/model-manifest.js';
import type { PreprocessingSpec } from '../imaging/preprocessing-spec.js';
import { writeSafetensors } from '../inference/safetensors.js';
import type { HostTensor } from '../inference/weight-import.js';

export const WEIGHTS_FILE = 'weights.safetensors';

/**
 * A DICOM UID for these exact weights: `2.25.` + a UUID (RFC 9562 version 8, name-based) made from the
 * first 128 bits of the weights' SHA-256, so retraining to different weights always changes it and the
 * same weights always give the same UID.
 */
export function modelUidFromSha256(sha256: string): string {
  const bytes = Buffer.from(sha256.slice(0, 32), 'hex');
  if (bytes.length !== 16) throw new GatewayError('INTERNAL', `not a SHA-256: ${sha256}`);
  bytes[6] = ((bytes[6] ?? 0) & 0x0f) | 0x80;
  bytes[8] = ((bytes[8] ?? 0) & 0x3f) | 0x80;
  return `2.25.${BigInt(`0x${bytes.toString('hex')}`).toString(10)}`;
}

/** A torchvision state_dict as safetensors, with the output class names in the metadata. */
export function stateDictBytes(weights: ReadonlyMap<string, HostTensor>, classes: readonly string[]): Buffer {
  return writeSafetensors(new Map(weights), {
    format: 'pt',
    classes: JSON.stringify(classes),
    producer: 'cxr-gateway train',
  });
}

export interface ModelDescription {
  name: string;
  version: string;
  architecture: DenseNetArchitecture;
  classes: readonly string[];
  preprocessing: PreprocessingSpec;
  intendedUse: string;
  description?: string;
}

/** Writes weights.safetensors and a manifest (checksum, fresh modelUid) that loadModel accepts. */
export function writeModelDirectory(
  dir: string,
  model: ModelDescription,
  weights: ReadonlyMap<string, HostTensor>,
): ModelManifest {
  const bytes = stateDictBytes(weights, model.classes);
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  const candidate = {
    name: model.name,
    version: model.version,
    modelUid: modelUidFromSha256(sha256),
    architecture: { ...model.architecture, numClasses: model.classes.length },
    classes: [...model.classes],
    preprocessing: model.preprocessing,
    weights: { file: WEIGHTS_FILE, format: 'safetensors' as const, sha256 },
    intendedUse: model.intendedUse,
    ...(model.description === undefined ? {} : { description: model.description }),
  };
  const parsed = manifestSchema.safeParse(candidate);
  if (!parsed.success) {
    throw new GatewayError(
      'TRAINING_CONFIG_INVALID',
      `the trained model's manifest would be invalid: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
    );
  }
  writeFileSync(path.join(dir, WEIGHTS_FILE), bytes);
  writeFileSync(path.join(dir, MANIFEST_FILE), `${JSON.stringify(parsed.data, null, 2)}\n`);
  return parsed.data;
}
