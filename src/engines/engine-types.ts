// Engine names without loading an engine: the config schema validates `inference.engine` against them.

/** In the order `auto` tries them: ONNX Runtime first (the faster one on a CPU host, see BENCHMARKS.md). */
export const ENGINE_ORDER = ['onnxruntime', 'tfjs'] as const;
export type EngineName = (typeof ENGINE_ORDER)[number];
export type EnginePreference = 'auto' | EngineName;
