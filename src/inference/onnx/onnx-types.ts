// Names of ONNX Runtime's execution providers we drive, without loading onnxruntime-node: the config schema
// validates `inference.onnxruntime.executionProviders` against them.

/** In the order `auto` tries them: CUDA 12 (installed on GPU hosts), WebGPU (bundled), then the CPU. */
export const ONNX_EXECUTION_PROVIDERS = ['cuda', 'webgpu', 'cpu'] as const;
export type OnnxExecutionProvider = (typeof ONNX_EXECUTION_PROVIDERS)[number];
