import { GatewayError } from '../errors.js';

/** What a WebGPU adapter says about itself (GPUAdapterInfo), as plain strings for logs and checks. */
export interface GpuAdapterDescription {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  /** Dawn marks its CPU adapters (lavapipe, SwiftShader) as fallback adapters. */
  isFallbackAdapter: boolean;
}

// Names that Mesa's lavapipe/llvmpipe, Google's SwiftShader and Mesa's softpipe give themselves in one of the
// fields. Dawn reports architecture 'software' for lavapipe today, but older builds left it empty, so the
// names are checked too.
const SOFTWARE_NAMES = /llvmpipe|lavapipe|swiftshader|softpipe|software/i;

/**
 * A software adapter runs the shaders on the CPU, several times slower than the wasm backend: Dawn may hand
 * one out silently when no GPU driver is usable, so every adapter is checked before it is used.
 */
export function isSoftwareAdapter(info: GpuAdapterDescription): boolean {
  if (info.isFallbackAdapter) return true;
  return [info.architecture, info.device, info.description].some((field) => SOFTWARE_NAMES.test(field));
}

/** One line for the start-up log: vendor, architecture, device and driver description. */
export function adapterSummary(info: GpuAdapterDescription): string {
  const parts = [info.vendor || 'unknown vendor', info.architecture, info.device, info.description].filter(
    (p) => p !== '',
  );
  return parts.join(' / ');
}

/** Reads GPUAdapterInfo defensively: Dawn exposes its fields as getters, older builds lack some of them. */
export function describeAdapter(adapter: { info?: unknown; isFallbackAdapter?: unknown }): GpuAdapterDescription {
  const info = (typeof adapter.info === 'object' && adapter.info !== null ? adapter.info : {}) as Record<
    string,
    unknown
  >;
  const text = (value: unknown) => (typeof value === 'string' ? value : '');
  return {
    vendor: text(info['vendor']),
    architecture: text(info['architecture']),
    device: text(info['device']),
    description: text(info['description']),
    isFallbackAdapter: info['isFallbackAdapter'] === true || adapter.isFallbackAdapter === true,
  };
}

/** Refuses a software adapter unless the configuration allows one (inference.allowSoftwareGpu, meant for tests). */
export function checkAdapter(info: GpuAdapterDescription, allowSoftware: boolean): void {
  if (allowSoftware || !isSoftwareAdapter(info)) return;
  throw new GatewayError(
    'WEBGPU_SOFTWARE_ADAPTER',
    `WebGPU found only a software adapter (${adapterSummary(info)}), which is slower than the wasm backend: ` +
      "install the GPU vendor's Vulkan driver (for NVIDIA, the driver's Vulkan ICD, nvidia_icd.json), or set " +
      'inference.allowSoftwareGpu: true to use it anyway (meant for tests)',
  );
}
