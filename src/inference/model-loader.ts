import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { GatewayError, describeError } from '../errors.js';
import { DenseNet } from './densenet.js';
import { readManifest, type ModelManifest } from './model-manifest.js';
import { readSafetensors } from './safetensors.js';
import { readTfjsWeights } from './tfjs-weights-format.js';
import { checkDenseNetWeights, type HostTensor } from './weight-import.js';

export interface CheckedModel {
  dir: string;
  manifest: ModelManifest;
  /** Checked against the architecture, torchvision names and layout. */
  weights: Map<string, HostTensor>;
  sha256: string;
}

/**
 * Reads a model directory and verifies it completely (manifest, checksum, every tensor's name and shape)
 * without touching a TensorFlow.js backend: what `model check` and every worker run before building.
 */
export function checkModelDirectory(dir: string): CheckedModel {
  const manifest = readManifest(dir);
  const weightsPath = path.join(dir, manifest.weights.file);
  let bytes: Buffer[];
  let tensors: Map<string, HostTensor>;
  try {
    if (manifest.weights.format === 'safetensors') {
      const file = readFileSync(weightsPath);
      bytes = [file];
      tensors = readSafetensors(file, weightsPath).tensors;
    } else {
      ({ bytes, tensors } = readTfjsWeights(weightsPath));
    }
  } catch (error) {
    if (error instanceof GatewayError) throw error;
    throw new GatewayError('WEIGHTS_UNREADABLE', `cannot read the weights ${weightsPath}: ${describeError(error)}`);
  }
  const sha256 = weightsSha256(bytes);
  if (sha256 !== manifest.weights.sha256) {
    throw new GatewayError(
      'WEIGHTS_CHECKSUM',
      `${weightsPath}: SHA-256 is ${sha256} but the manifest says ${manifest.weights.sha256}; the weights were changed or corrupted — refusing to use them`,
    );
  }
  const weights = checkDenseNetWeights(tensors, manifest.architecture, weightsPath);
  return { dir, manifest, weights, sha256 };
}

export interface LoadedModel {
  manifest: ModelManifest;
  network: DenseNet;
  sha256: string;
}

/** Checks a model directory and builds its network on the current TensorFlow.js backend. */
export function loadModel(dir: string): LoadedModel {
  const checked = checkModelDirectory(dir);
  return {
    manifest: checked.manifest,
    network: DenseNet.fromHostWeights(checked.manifest.architecture, checked.weights),
    sha256: checked.sha256,
  };
}

/** SHA-256 over the byte strings of a weights file (one for safetensors, manifest + binary for tfjs). */
export function weightsSha256(parts: readonly Buffer[]): string {
  const hash = createHash('sha256');
  for (const p of parts) hash.update(p);
  return hash.digest('hex');
}
