import type { ErrorCode } from '../errors.js';
import type { BackendName, BackendPreference } from '../inference/backend.js';
import type { ImageWorkRequest, ImageWorkResult } from './image-work.js';
import type { LrpOptions } from '../lrp/composites.js';

/** Messages between the inference pool (main thread) and its workers. */
export type ToWorker =
  | { type: 'init'; modelDir: string; backend: BackendPreference; allowSoftwareGpu: boolean; lrp: Partial<LrpOptions> }
  | { type: 'process'; id: number; request: ImageWorkRequest };

export type FromWorker =
  | { type: 'ready'; backend: BackendName; skipped: Array<{ name: BackendName; reason: string }> }
  | { type: 'init-failed'; code: ErrorCode; reason: string }
  | { type: 'processed'; id: number; results: ImageWorkResult[] }
  // The code crosses the thread boundary as it is, so `jobs --json` and the logs show the worker's own code.
  | { type: 'failed'; id: number; code: ErrorCode; reason: string };
