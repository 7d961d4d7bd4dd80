// Backend names and the candidate contract, without TensorFlow.js: the config schema validates
// `inference.backend` against the names, and loading a YAML file must not load tfjs (backend.ts does, to
// register and select backends). webgpu-candidate.ts implements the contract without importing backend.ts.

/**
 * Our names for the backends, in the order `auto` tries them: GPU first (CUDA through libtensorflow, then
 * WebGPU through Dawn, which needs no CUDA version to match), then native CPU, then portable.
 */
export const BACKEND_ORDER = ['tensorflow-gpu', 'webgpu', 'tensorflow', 'wasm', 'cpu'] as const;
export type BackendName = (typeof BACKEND_ORDER)[number];
export type BackendPreference = 'auto' | BackendName;

export interface BackendCandidate {
  name: BackendName;
  /** The name tfjs registers it under. */
  tfName: string;
  /**
   * Imports whatever registers the backend; throws when the package or its native library is missing, or
   * when the device it found is not acceptable. May return what it found (e.g. the GPU adapter) for the log.
   */
  register: (context: BackendRegisterContext) => Promise<BackendDetails | void>;
}

/** What a candidate learns from the configuration. */
export interface BackendRegisterContext {
  /** Accept a software GPU adapter (lavapipe, SwiftShader) for webgpu: for tests only, it is slower than wasm. */
  allowSoftwareGpu: boolean;
}

/** Facts about the chosen device, e.g. { adapter: 'nvidia / ...', vendor: 'nvidia', software: 'false' }. */
export type BackendDetails = Record<string, string>;
