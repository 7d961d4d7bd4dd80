// SEAM (issue 18): signatures fixed here; the bodies are written in the ONNX engine branch.
import type { OnnxExecutionProvider } from './onnx-types.js';

export interface OnnxSessionOptions {
  /** Tried in this order; the first that loads and runs the model is used (auto: cuda, webgpu, cpu). */
  executionProviders: readonly OnnxExecutionProvider[];
  /** Intra-op threads of the CPU provider (default: the machine's cores). */
  intraOpThreads?: number;
  /** Accept a software WebGPU adapter (lavapipe, SwiftShader): for tests only (inference.allowSoftwareGpu). */
  allowSoftwareGpu: boolean;
  /** Called for each provider passed over (with why) and for the one chosen. */
  log?: (message: string, fields: Record<string, string>) => void;
}

export interface OnnxProviderSelection {
  provider: OnnxExecutionProvider;
  skipped: Array<{ name: OnnxExecutionProvider; reason: string }>;
  /** e.g. { threads: '2' } or the WebGPU adapter. */
  details: Record<string, string>;
}

/** A tensor crossing into or out of a session. */
export interface OnnxTensor {
  type: 'float32' | 'int64';
  data: Float32Array | BigInt64Array;
  dims: readonly number[];
}

export interface OnnxModelSession {
  readonly provider: OnnxExecutionProvider;
  run(feeds: Readonly<Record<string, OnnxTensor>>): Promise<Record<string, OnnxTensor>>;
  release(): Promise<void>;
}

/**
 * Loads onnxruntime-node (an optional dependency: a clear ONNX_RUNTIME_UNAVAILABLE error when it is absent) and
 * opens a session for the model on the first execution provider that works.
 */
export async function openOnnxSession(
  model: Uint8Array,
  options: OnnxSessionOptions,
): Promise<{ session: OnnxModelSession; selection: OnnxProviderSelection }> {
  void model;
  void options;
  throw new Error('SEAM: openOnnxSession is written in the ONNX engine branch');
}
