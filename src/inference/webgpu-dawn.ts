import { GatewayError, describeError } from '../errors.js';
import { checkAdapter, describeAdapter } from './webgpu-adapter.js';
import { watchDeviceErrors } from './webgpu-device-errors.js';

/** The part of a GPUAdapter we read; tfjs gets the whole native object. */
export interface DawnAdapter {
  readonly info?: unknown;
  readonly isFallbackAdapter?: unknown;
  requestDevice?: (descriptor?: unknown) => Promise<unknown>;
}

export interface DawnAdapterOptions {
  powerPreference?: 'high-performance' | 'low-power';
  forceFallbackAdapter?: boolean;
}

export interface DawnGpu {
  requestAdapter(options?: DawnAdapterOptions): Promise<DawnAdapter | null>;
}

/** The `webgpu` package (Dawn's Node binding): `create(flags)` gives a GPU, `globals` the GPU* classes and enums. */
export interface DawnModule {
  create(flags: string[]): DawnGpu;
  globals: Record<string, unknown>;
}

// In a variable: `webgpu` is an optional dependency, so TypeScript must not resolve it at build time, and
// its own types would declare browser globals (navigator, GPU*) for the whole project.
const WEBGPU_PACKAGE = 'webgpu';

export async function loadDawn(): Promise<DawnModule> {
  let loaded: unknown;
  try {
    loaded = await import(WEBGPU_PACKAGE);
  } catch (error) {
    throw new GatewayError(
      'WEBGPU_UNAVAILABLE',
      `the optional package 'webgpu' (Dawn for Node.js) could not be loaded (${describeError(error).split('\n')[0]}): ` +
        'run npm install on linux-x64 or macOS, where it ships a prebuilt dawn.node',
      { cause: error },
    );
  }
  const candidate = loaded as Partial<DawnModule> | null;
  if (typeof candidate?.create !== 'function' || typeof candidate.globals !== 'object' || candidate.globals === null) {
    throw new GatewayError(
      'WEBGPU_UNAVAILABLE',
      "the package 'webgpu' does not export create() and globals: install webgpu 0.6",
    );
  }
  return candidate as DawnModule;
}

/**
 * Makes this process look like a browser with WebGPU, as @tensorflow/tfjs-backend-webgpu expects: the GPU*
 * enums (GPUBufferUsage, GPUMapMode, ...) as globals, and `navigator.gpu`. That module registers its backend
 * only if navigator.gpu exists when it is first imported, so this must run before the import.
 *
 * The navigator.gpu installed here is a wrapper, not Dawn's GPU itself: tfjs requests its own adapter, and
 * the wrapper checks that one too (`allowSoftware()` is read at each request), so a software adapter cannot
 * slip in after the one we logged was a GPU; and it watches the device tfjs then creates for errors.
 */
export function installNavigatorGpu(dawn: DawnModule, gpu: DawnGpu, allowSoftware: () => boolean): void {
  for (const [name, value] of Object.entries(dawn.globals)) {
    if (!(name in globalThis)) Object.defineProperty(globalThis, name, { value, configurable: true, writable: true });
  }
  const wrapper = {
    requestAdapter: async (options?: DawnAdapterOptions): Promise<DawnAdapter | null> => {
      const adapter = await gpu.requestAdapter(options);
      if (adapter === null) return null;
      checkAdapter(describeAdapter(adapter), allowSoftware());
      // Every device tfjs makes gets its errors counted (webgpu-device-errors.ts): they are events, not exceptions.
      const requestDevice = adapter.requestDevice?.bind(adapter);
      if (requestDevice !== undefined) {
        Object.defineProperty(adapter, 'requestDevice', {
          configurable: true,
          value: async (descriptor?: unknown) => {
            const device = await requestDevice(descriptor);
            watchDeviceErrors(device);
            return device;
          },
        });
      }
      return adapter;
    },
    // Only a canvas would ask; Node has none.
    getPreferredCanvasFormat: () => 'rgba8unorm',
  };
  // Node 21+ has a navigator of its own (without gpu); Node 20 has none.
  const existing = (globalThis as { navigator?: object }).navigator;
  if (existing !== undefined)
    Object.defineProperty(existing, 'gpu', { value: wrapper, configurable: true, writable: true });
  else Object.defineProperty(globalThis, 'navigator', { value: { gpu: wrapper }, configurable: true, writable: true });
}
