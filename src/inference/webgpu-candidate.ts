import * as tf from '@tensorflow/tfjs';
import { GatewayError } from '../errors.js';
import type { BackendCandidate, BackendRegisterContext } from './backend-types.js';
import { adapterSummary, checkAdapter, describeAdapter, isSoftwareAdapter } from './webgpu-adapter.js';
import { installNavigatorGpu, loadDawn, type DawnGpu, type DawnModule } from './webgpu-dawn.js';
import { patchWebGpuKernels } from './webgpu-kernels.js';

export interface WebGpuCandidateDeps {
  /** Loads Dawn's Node binding (the `webgpu` package); tests pass a fake. */
  loadDawn: () => Promise<DawnModule>;
  /** Imports whatever registers the tfjs backend named `tfName`; tests pass a fake. */
  registerTfjs: () => Promise<void>;
  tfName: string;
  /** Dawn toggles for create(), e.g. 'backend=vulkan'. */
  dawnFlags: string[];
}

// In a variable, like the other optional backends: absent packages must not break the build.
const TFJS_WEBGPU = '@tensorflow/tfjs-backend-webgpu';

/**
 * The `webgpu` backend: TensorFlow.js on Dawn (Vulkan on Linux), with no CUDA version to match. Before tfjs
 * sees the GPU we look at the adapter Dawn would give it: Dawn falls back to a CPU implementation (lavapipe,
 * SwiftShader) without saying so, and that is refused unless `allowSoftwareGpu` is set.
 */
export function createWebGpuCandidate(overrides: Partial<WebGpuCandidateDeps> = {}): BackendCandidate {
  const deps: WebGpuCandidateDeps = {
    loadDawn,
    registerTfjs: async () => {
      await import(TFJS_WEBGPU);
      patchWebGpuKernels();
    },
    tfName: 'webgpu',
    dawnFlags: [],
    ...overrides,
  };
  // One Dawn instance per process: each create() would start another, with its own devices.
  let dawn: Promise<{ module: DawnModule; gpu: DawnGpu }> | undefined;
  // Read by navigator.gpu at each adapter request, so the latest selection's policy applies.
  let allowSoftware = false;

  return {
    name: 'webgpu',
    tfName: deps.tfName,
    register: async (context?: BackendRegisterContext) => {
      allowSoftware = context?.allowSoftwareGpu === true;
      dawn ??= deps.loadDawn().then((module) => ({ module, gpu: module.create(deps.dawnFlags) }));
      const { module, gpu } = await dawn.catch((error: unknown) => {
        dawn = undefined;
        throw error;
      });
      // The same request tfjs makes (it asks for high-performance unless WEBGPU_USE_LOW_POWER_GPU is set).
      const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
      if (adapter === null) {
        throw new GatewayError(
          'WEBGPU_NO_ADAPTER',
          "Dawn found no WebGPU adapter: install a Vulkan driver (the GPU vendor's, e.g. the NVIDIA driver's Vulkan ICD; " +
            "Debian 12's Mesa 22 lavapipe is too old for Dawn, Mesa 25 from bookworm-backports works)",
        );
      }
      const info = describeAdapter(adapter);
      checkAdapter(info, allowSoftware);
      installNavigatorGpu(module, gpu, () => allowSoftware);
      await deps.registerTfjs();
      if (tf.findBackendFactory(deps.tfName) === null) {
        throw new GatewayError(
          'WEBGPU_NOT_REGISTERED',
          `${TFJS_WEBGPU} registered no '${deps.tfName}' backend: it registers only if navigator.gpu exists when it is ` +
            'first imported, so nothing may import it before the backend is selected',
        );
      }
      return {
        adapter: adapterSummary(info),
        vendor: info.vendor || 'unknown',
        software: String(isSoftwareAdapter(info)),
      };
    },
  };
}
