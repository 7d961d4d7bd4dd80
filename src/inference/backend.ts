import * as tf from '@tensorflow/tfjs';
import { describeError, GatewayError } from '../errors.js';
import {
  BACKEND_ORDER,
  type BackendCandidate,
  type BackendDetails,
  type BackendName,
  type BackendPreference,
  type BackendRegisterContext,
} from './backend-types.js';
import { createWebGpuCandidate } from './webgpu-candidate.js';

export {
  BACKEND_ORDER,
  type BackendCandidate,
  type BackendDetails,
  type BackendName,
  type BackendPreference,
  type BackendRegisterContext,
};

export interface SelectBackendOptions {
  candidates?: readonly BackendCandidate[];
  /** inference.allowSoftwareGpu. Default false. */
  allowSoftwareGpu?: boolean;
  /** Called for each candidate passed over and for the one chosen (fits winston's logger.info). */
  log?: (message: string, fields: Record<string, string>) => void;
}

export interface BackendSelection {
  name: BackendName;
  /** Why each earlier candidate was passed over, for the start-up log. */
  skipped: Array<{ name: BackendName; reason: string }>;
  /** What the chosen candidate reported about its device (webgpu: the adapter and its vendor). */
  details: BackendDetails;
}

// Specifiers in variables: the native packages are optional dependencies and usually absent (their
// install downloads libtensorflow, which fails offline), so TypeScript must not resolve them at build time.
const TFJS_NODE_GPU = '@tensorflow/tfjs-node-gpu';
const TFJS_NODE = '@tensorflow/tfjs-node';
const TFJS_WASM = '@tensorflow/tfjs-backend-wasm';

export const DEFAULT_CANDIDATES: readonly BackendCandidate[] = [
  { name: 'tensorflow-gpu', tfName: 'tensorflow', register: async () => void (await import(TFJS_NODE_GPU)) },
  createWebGpuCandidate(),
  { name: 'tensorflow', tfName: 'tensorflow', register: async () => void (await import(TFJS_NODE)) },
  { name: 'wasm', tfName: 'wasm', register: async () => void (await import(TFJS_WASM)) },
  { name: 'cpu', tfName: 'cpu', register: async () => undefined },
];

/**
 * Picks the first backend that both registers and initialises. `setBackend` resolves to false instead of
 * throwing when a backend fails to initialise, and tfjs would then quietly run on another one: we check
 * its answer and the active backend, so the name we log is the one that computes.
 */
export async function selectBackend(
  preference: BackendPreference,
  // A bare candidate list is the older form of the second argument (tests still use it).
  candidatesOrOptions: readonly BackendCandidate[] | SelectBackendOptions = {},
): Promise<BackendSelection> {
  const options: SelectBackendOptions = isCandidateList(candidatesOrOptions)
    ? { candidates: candidatesOrOptions }
    : candidatesOrOptions;
  const candidates = options.candidates ?? DEFAULT_CANDIDATES;
  const context: BackendRegisterContext = { allowSoftwareGpu: options.allowSoftwareGpu === true };
  const order = preference === 'auto' ? candidates : candidates.filter((c) => c.name === preference);
  const skipped: BackendSelection['skipped'] = [];
  for (const candidate of order) {
    try {
      const details = (await candidate.register(context)) ?? {};
      const ok = await tf.setBackend(candidate.tfName);
      if (!ok) throw new GatewayError('BACKEND_UNAVAILABLE', `tf.setBackend('${candidate.tfName}') returned false`);
      await tf.ready();
      if (tf.getBackend() !== candidate.tfName)
        throw new GatewayError('BACKEND_UNAVAILABLE', `tfjs is running on '${tf.getBackend()}' instead`);
      options.log?.('inference backend selected', { backend: candidate.name, ...details });
      return { name: candidate.name, skipped, details };
    } catch (error) {
      const reason = describeError(error).split('\n')[0] ?? 'unknown error';
      skipped.push({ name: candidate.name, reason });
      options.log?.('inference backend skipped', { backend: candidate.name, reason });
    }
  }
  const tried = skipped.map((s) => `${s.name}: ${s.reason}`).join('; ');
  throw new GatewayError(
    'BACKEND_UNAVAILABLE',
    preference === 'auto'
      ? `no TensorFlow.js backend could be started (${tried})`
      : `inference.backend '${preference}' could not be started: ${tried}`,
  );
}

export function isGpuBackend(name: BackendName): boolean {
  return name === 'tensorflow-gpu' || name === 'webgpu';
}

function isCandidateList(
  value: readonly BackendCandidate[] | SelectBackendOptions,
): value is readonly BackendCandidate[] {
  return Array.isArray(value);
}
