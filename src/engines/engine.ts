// The one interface the daemon, `render`, `classify` and the benchmarks serve the model through. Two engines
// implement it: TF.js (tfjs-engine.ts: the training engine, any tfjs backend) and ONNX Runtime (onnx-engine.ts:
// the forward pass and each LRP composite compiled to ONNX graphs at load). This folder sits above `lrp`
// because an engine explains, and below everything that uses one.

import type { ModelManifest } from '../inference/model-manifest.js';
import type { LrpOptions } from '../lrp/composites.js';
import type { ExplainTarget, Explanation } from '../lrp/explanation.js';
import type { EngineName } from './engine-types.js';

export type { ExplainTarget, Explanation };

/** What the engine runs on, for the start-up log, `classify --json` and the health page. */
export interface EngineInfo {
  engine: EngineName;
  /** The tfjs backend (wasm, webgpu, ...) or the ONNX Runtime execution provider (cpu, webgpu, cuda). */
  device: string;
  /** Facts about the device (GPU adapter, threads). */
  details: Record<string, string>;
  /** Engines and devices passed over before this one, with why, in the order tried. */
  skipped: Array<{ name: string; reason: string }>;
}

export interface InferenceEngine {
  readonly info: EngineInfo;
  readonly manifest: ModelManifest;
  /** The LRP rules and parameters every explanation is made with. */
  readonly lrpOptions: LrpOptions;
  /**
   * Logits per image, in input order. Each input is one preprocessed image as `preprocess()` makes it:
   * NHWC, inputSize x inputSize x manifest.preprocessing.channels, row-major.
   */
  classify(inputs: readonly Float32Array[]): Promise<number[][]>;
  /**
   * One forward pass and LRP for the batch: per image, one explanation per explained class (one unless the
   * target is 'all'), each carrying every class's logits. A map with a non-finite value is an error
   * (LRP_NOT_FINITE), never returned.
   */
  explain(inputs: readonly Float32Array[], target: ExplainTarget): Promise<Explanation[][]>;
  /** Frees the sessions or tensors; the engine is unusable afterwards. */
  dispose(): Promise<void>;
}
