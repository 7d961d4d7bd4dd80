import type { ErrorCode } from '../errors.js';
import type { EngineInfo } from '../engines/engine.js';
import type { EngineChoiceOptions } from '../engines/select-engine.js';
import type { ImageWorkRequest, ImageWorkResult } from './image-work.js';

/** Messages between the inference pool (main thread) and its workers. */
export type ToWorker =
  | { type: 'init'; engine: Omit<EngineChoiceOptions, 'log'> }
  | { type: 'process'; id: number; request: ImageWorkRequest };

export type FromWorker =
  /** The engine, its device and what was passed over: the pool logs it (ANALYSIS-5015/5016) and health shows it. */
  | { type: 'ready'; engine: EngineInfo }
  | { type: 'init-failed'; code: ErrorCode; reason: string }
  | { type: 'processed'; id: number; results: ImageWorkResult[] }
  // The code crosses the thread boundary as it is, so `jobs --json` and the logs show the worker's own code.
  | { type: 'failed'; id: number; code: ErrorCode; reason: string };
