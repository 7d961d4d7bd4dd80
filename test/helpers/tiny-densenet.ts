import { createHash } from 'node:crypto';
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { DenseNet } from '../../src/inference/densenet.js';
import type { DenseNetArchitecture } from '../../src/inference/densenet-architecture.js';
import { checkDenseNetWeights } from '../../src/inference/weight-import.js';
import type { ModelManifest } from '../../src/inference/model-manifest.js';
import { readSafetensors, type SafetensorsEntry } from '../../src/inference/safetensors.js';

/** The committed PyTorch fixtures (tools/make_densenet_fixture.py); tests read them from the source tree. */
export const FIXTURE_DIR = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  '../../../test/fixtures/densenet',
);

export const TINY_ARCHITECTURE: DenseNetArchitecture = {
  family: 'densenet',
  growthRate: 8,
  blockConfig: [2, 2, 2],
  numInitFeatures: 16,
  bnSize: 4,
  numClasses: 3,
};

export function fixture(name: string): Map<string, SafetensorsEntry> {
  return readSafetensors(readFileSync(path.join(FIXTURE_DIR, name)), name).tensors;
}

export function fixtureTensor(file: string, name: string): SafetensorsEntry {
  const t = fixture(file).get(name);
  if (t === undefined) throw new Error(`${file} has no tensor ${name}`);
  return t;
}

/** NCHW host data to NHWC, the layout our network takes and gives. */
export function nchwToNhwc(t: { shape: number[]; data: Float32Array }): {
  shape: [number, number, number, number];
  data: Float32Array;
} {
  const [n, c, h, w] = t.shape as [number, number, number, number];
  const out = new Float32Array(t.data.length);
  for (let b = 0; b < n; b += 1)
    for (let ch = 0; ch < c; ch += 1)
      for (let y = 0; y < h; y += 1)
        for (let x = 0; x < w; x += 1)
          out[((b * h + y) * w + x) * c + ch] = t.data[((b * c + ch) * h + y) * w + x] ?? 0;
  return { shape: [n, h, w, c], data: out };
}

export function maxAbs(values: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < values.length; i += 1) m = Math.max(m, Math.abs(values[i] ?? 0));
  return m;
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} != ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i += 1) m = Math.max(m, Math.abs((a[i] ?? 0) - (b[i] ?? 0)));
  return m;
}

/** A model directory around the tiny fixture weights, with a correct checksum unless told otherwise. */
export function tinyModelDir(overrides: Partial<ModelManifest> = {}, weightsFile = 'tiny.safetensors'): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tiny-model-'));
  copyFileSync(path.join(FIXTURE_DIR, weightsFile), path.join(dir, 'weights.safetensors'));
  const sha256 = sha256Of(path.join(dir, 'weights.safetensors'));
  const manifest: ModelManifest = {
    name: 'tiny-test',
    version: '0.0.1',
    modelUid: '2.25.1234567890',
    architecture: TINY_ARCHITECTURE,
    classes: ['COVID-19', 'pneumonia', 'normal'],
    preprocessing: {
      inputSize: 64,
      resize: 'pad',
      padValue: 0,
      channels: 3,
      window: 'dicom',
      percentiles: [0.5, 99.5],
      mean: [0.485, 0.456, 0.406],
      std: [0.229, 0.224, 0.225],
    },
    weights: { file: 'weights.safetensors', format: 'safetensors', sha256 },
    intendedUse: 'Test model with random weights. Not for clinical use.',
    ...overrides,
  };
  writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify(manifest, null, 2));
  return dir;
}

function sha256Of(file: string): string {
  return createHash('sha256').update(readFileSync(file)).digest('hex');
}

export const TINY_CLASSES = ['COVID-19', 'pneumonia', 'normal'];
export const TINY_NORMALISATION = { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] };

/** The fixture network on the current backend (the bias-free copy has zero biases and BN shifts). */
export function tinyNetwork(file: 'tiny.safetensors' | 'tiny-biasfree.safetensors'): DenseNet {
  return DenseNet.fromHostWeights(TINY_ARCHITECTURE, checkDenseNetWeights(fixture(file), TINY_ARCHITECTURE, file));
}

/** The fixture's two input images, NHWC. */
export function tinyInput(): tf.Tensor4D {
  const x = nchwToNhwc(fixtureTensor('tiny-io.safetensors', 'input'));
  return tf.tensor4d(x.data, x.shape);
}
