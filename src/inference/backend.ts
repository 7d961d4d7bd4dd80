import * as tf from '@tensorflow/tfjs';
import { describeError } from '../errors.js';

/** Our names for the backends, in the order `auto` tries them: GPU first, then native CPU, then portable. */
export const BACKEND_ORDER = ['tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'] as const;
export type BackendName = (typeof BACKEND_ORDER)[number];
export type BackendPreference = 'auto' | BackendName;

export interface BackendCandidate {
  name: BackendName;
  /** The name tfjs registers it under. */
  tfName: string;
  /** Imports whatever registers the backend; throws when the package or its native library is missing. */
  register: () => Promise<void>;
}

export interface BackendSelection {
  name: BackendName;
  /** Why each earlier candidate was passed over, for the start-up log. */
  skipped: Array<{ name: BackendName; reason: string }>;
}

// Specifiers in variables: the native packages are optional dependencies and usually absent (their
// install downloads libtensorflow, which fails offline), so TypeScript must not resolve them at build time.
const TFJS_NODE_GPU = '@tensorflow/tfjs-node-gpu';
const TFJS_NODE = '@tensorflow/tfjs-node';
const TFJS_WASM = '@tensorflow/tfjs-backend-wasm';

export const DEFAULT_CANDIDATES: readonly BackendCandidate[] = [
  { name: 'tensorflow-gpu', tfName: 'tensorflow', register: async () => void (await import(TFJS_NODE_GPU)) },
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
  candidates: readonly BackendCandidate[] = DEFAULT_CANDIDATES,
): Promise<BackendSelection> {
  const order = preference === 'auto' ? candidates : candidates.filter((c) => c.name === preference);
  const skipped: BackendSelection['skipped'] = [];
  for (const candidate of order) {
    try {
      await candidate.register();
      const ok = await tf.setBackend(candidate.tfName);
      if (!ok) throw new Error(`tf.setBackend('${candidate.tfName}') returned false`);
      await tf.ready();
      if (tf.getBackend() !== candidate.tfName) throw new Error(`tfjs is running on '${tf.getBackend()}' instead`);
      return { name: candidate.name, skipped };
    } catch (error) {
      skipped.push({ name: candidate.name, reason: describeError(error).split('\n')[0] ?? 'unknown error' });
    }
  }
  const tried = skipped.map((s) => `${s.name}: ${s.reason}`).join('; ');
  throw new Error(
    preference === 'auto'
      ? `no TensorFlow.js backend could be started (${tried})`
      : `inference.backend '${preference}' could not be started: ${tried}`,
  );
}

export function isGpuBackend(name: BackendName): boolean {
  return name === 'tensorflow-gpu';
}
