// The backend names alone, without TensorFlow.js: the config schema validates `inference.backend` against
// them, and loading a YAML file must not load tfjs (backend.ts does, to register and select backends).

/**
 * Our names for the backends, in the order `auto` tries them: GPU first (CUDA through libtensorflow, then
 * WebGPU through Dawn, which needs no CUDA version to match), then native CPU, then portable.
 */
export const BACKEND_ORDER = ['tensorflow-gpu', 'webgpu', 'tensorflow', 'wasm', 'cpu'] as const;
export type BackendName = (typeof BACKEND_ORDER)[number];
export type BackendPreference = 'auto' | BackendName;
