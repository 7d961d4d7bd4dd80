import * as tf from '@tensorflow/tfjs';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { GatewayError } from '../errors.js';
import type { HostTensor } from './weight-import.js';

/**
 * TensorFlow.js's own weights format: a JSON weights manifest (tf.io.WeightsManifestConfig) next to one
 * binary file. Tensors keep torchvision's names and layout, so both formats share one import path.
 */
export interface TfjsWeightsFiles {
  manifestJson: Buffer;
  binary: Buffer;
  binaryName: string;
}

export async function encodeTfjsWeights(
  weights: ReadonlyMap<string, HostTensor>,
  binaryName = 'weights.bin',
): Promise<TfjsWeightsFiles> {
  const named = [...weights].map(([name, t]) => ({ name, tensor: tf.tensor(t.data, t.shape, 'float32') }));
  try {
    const { data, specs } = await tf.io.encodeWeights(named);
    const manifest: tf.io.WeightsManifestConfig = [{ paths: [binaryName], weights: specs }];
    return { manifestJson: Buffer.from(JSON.stringify(manifest)), binary: Buffer.from(data), binaryName };
  } finally {
    tf.dispose(named.map((n) => n.tensor));
  }
}

export function writeTfjsWeights(dir: string, manifestName: string, files: TfjsWeightsFiles): void {
  writeFileSync(path.join(dir, manifestName), files.manifestJson);
  writeFileSync(path.join(dir, files.binaryName), files.binary);
}

/** Reads the manifest and its binary; returns both byte strings (for the checksum) and the tensors. */
export function readTfjsWeights(manifestPath: string): { bytes: Buffer[]; tensors: Map<string, HostTensor> } {
  const manifestJson = readFileSync(manifestPath);
  const manifest = JSON.parse(manifestJson.toString('utf8')) as tf.io.WeightsManifestConfig;
  const group = manifest[0];
  if (manifest.length !== 1 || group === undefined || group.paths.length !== 1 || group.paths[0] === undefined) {
    throw new GatewayError('WEIGHTS_INVALID', `${manifestPath}: expected one weights group with one binary file`);
  }
  const binary = readFileSync(path.join(path.dirname(manifestPath), path.basename(group.paths[0])));
  const tensors = new Map<string, HostTensor>();
  let offset = 0;
  for (const spec of group.weights) {
    if (spec.dtype !== 'float32' || spec.quantization !== undefined) {
      throw new GatewayError(
        'WEIGHTS_INVALID',
        `${manifestPath}: ${spec.name} is ${spec.dtype}; only unquantised float32 is supported`,
      );
    }
    const count = spec.shape.reduce((a, b) => a * b, 1);
    if (offset + count * 4 > binary.length)
      throw new GatewayError('WEIGHTS_INVALID', `${manifestPath}: binary file is too short for ${spec.name}`);
    const data = new Float32Array(count);
    new Uint8Array(data.buffer).set(binary.subarray(offset, offset + count * 4));
    tensors.set(spec.name, { shape: [...spec.shape], data });
    offset += count * 4;
  }
  return { bytes: [manifestJson, binary], tensors };
}
