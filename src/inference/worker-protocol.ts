import type { BackendName, BackendPreference } from './backend.js';
import type { ImageOutcome } from './batch-runner.js';

/** Messages between the inference pool (main thread) and its workers. */
export type ToWorker =
  | { type: 'init'; modelDir: string; backend: BackendPreference }
  | { type: 'classify'; id: number; paths: string[] };

export type FromWorker =
  | { type: 'ready'; backend: BackendName; skipped: Array<{ name: BackendName; reason: string }> }
  | { type: 'init-failed'; code: string; reason: string }
  | { type: 'classified'; id: number; outcomes: ImageOutcome[] }
  | { type: 'failed'; id: number; reason: string };
