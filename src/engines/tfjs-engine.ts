// The TF.js engine: today's path (a tfjs backend, the DenseNet in tfjs ops and DenseNetLrp) behind the engine
// interface. It is also the training engine, and the one every tfjs backend (wasm, webgpu, tfjs-node) serves.

import * as tf from '@tensorflow/tfjs';
import { selectBackend, type BackendPreference } from '../inference/backend.js';
import { loadModel } from '../inference/model-loader.js';
import type { LrpOptions } from '../lrp/composites.js';
import { DenseNetLrp } from '../lrp/densenet-lrp.js';
import type { ExplainTarget, Explanation } from '../lrp/explanation.js';
import type { EngineInfo, InferenceEngine } from './engine.js';
import { assertFiniteExplanations } from './finite-explanations.js';
import { inputBatch } from './tfjs-batch.js';

export interface TfjsEngineOptions {
  modelDir: string;
  /** inference.backend: auto tries them in BACKEND_ORDER. */
  backend: BackendPreference;
  allowSoftwareGpu: boolean;
  lrp: Partial<LrpOptions>;
  /** Called for each backend passed over and for the one chosen. */
  log?: (message: string, fields: Record<string, string>) => void;
}

/**
 * Selects the tfjs backend (process-wide: tfjs has one active backend), checks and loads the model and builds
 * the LRP engine on it.
 */
export async function createTfjsEngine(options: TfjsEngineOptions): Promise<InferenceEngine> {
  const selection = await selectBackend(options.backend, {
    allowSoftwareGpu: options.allowSoftwareGpu,
    ...(options.log === undefined ? {} : { log: options.log }),
  });
  const model = loadModel(options.modelDir);
  const { manifest, network } = model;
  let lrp: DenseNetLrp;
  try {
    lrp = new DenseNetLrp(network, manifest.classes, manifest.preprocessing, options.lrp);
  } catch (error) {
    network.dispose();
    throw error;
  }
  const info: EngineInfo = {
    engine: 'tfjs',
    device: selection.name,
    details: { ...selection.details },
    skipped: selection.skipped.map((s) => ({ name: `tfjs/${s.name}`, reason: s.reason })),
  };
  const n = manifest.classes.length;
  return {
    info,
    manifest,
    lrpOptions: lrp.options,
    async classify(inputs: readonly Float32Array[]): Promise<number[][]> {
      if (inputs.length === 0) return [];
      const logits = tf.tidy(() => network.logits(inputBatch(inputs, manifest.preprocessing)));
      try {
        const values = await logits.data();
        return inputs.map((_, i) => Array.from(values.subarray(i * n, (i + 1) * n)));
      } finally {
        logits.dispose();
      }
    },
    async explain(inputs: readonly Float32Array[], target: ExplainTarget): Promise<Explanation[][]> {
      if (inputs.length === 0) return [];
      const batch = inputBatch(inputs, manifest.preprocessing);
      try {
        return assertFiniteExplanations(await lrp.explain(batch, target));
      } finally {
        batch.dispose();
      }
    },
    async dispose(): Promise<void> {
      lrp.dispose();
      network.dispose();
    },
  };
}
