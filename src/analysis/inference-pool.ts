import { Worker } from 'node:worker_threads';
import { GatewayError, unreachable } from '../errors.js';
import type { Logger } from '../logging/logger.js';
import { isGpuBackend, type BackendName, type BackendPreference } from '../inference/backend.js';
import { ONNX_EXECUTION_PROVIDERS, type OnnxExecutionProvider } from '../inference/onnx/onnx-types.js';
import type { EngineInfo } from '../engines/engine.js';
import { logEngineChoice } from '../engines/engine-log.js';
import type { EnginePreference } from '../engines/engine-types.js';
import type { EngineChoiceOptions } from '../engines/select-engine.js';
import type { FromWorker, ToWorker } from './worker-protocol.js';
import type { LrpOptions } from '../lrp/composites.js';
import type { ImageWorkRequest, ImageWorkResult } from './image-work.js';

/** Timers the pool waits on before replacing a worker; tests inject their own to step through the backoff. */
export interface PoolTimers {
  setTimeout(run: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export interface RestartBackoff {
  /** Delay before the first replacement after a crash (default 250 ms). */
  initialMs: number;
  /** The delay doubles with each replacement that fails in a row, up to this (default 30 s). */
  maxMs: number;
}

export interface InferencePoolOptions {
  modelDir: string;
  /** inference.engine (default auto: ONNX Runtime, then TF.js). */
  engine?: EnginePreference;
  /** The TF.js engine's backend (inference.backend). */
  backend: BackendPreference;
  /** inference.onnxruntime (default: every provider in order; intra-op threads 'auto'). */
  onnxruntime?: {
    executionProviders: readonly OnnxExecutionProvider[];
    /** auto: the cores shared out among the workers (all of them for the one worker `auto` gives). */
    intraOpThreads: number | 'auto';
  };
  /**
   * Worker threads; `auto`: one for ONNX Runtime (it parallelises inside a run, so several workers would fight
   * for the cores) and for a GPU; cores - 1 (at least 1) for TF.js on a CPU backend.
   */
  workers: number | 'auto';
  cores: number;
  logger: Logger;
  /** Lets the webgpu backend run on a software adapter (tests only: inference.allowSoftwareGpu). */
  allowSoftwareGpu?: boolean;
  /** LRP settings for the workers' explanation engine (`explain` in the config). */
  lrp?: Partial<LrpOptions>;
  restartBackoff?: Partial<RestartBackoff>;
  timers?: PoolTimers;
}

/** What /healthz needs: fewer live workers than wanted means the pool is degraded. */
export interface PoolStatus {
  /** Workers the pool is meant to run. */
  wanted: number;
  /** Workers started and serving. */
  live: number;
  /** Replacements scheduled or starting. */
  restarting: number;
  /** Workers that died since the pool started. */
  crashes: number;
}

/**
 * A worker died (exited, or threw outside any request) while it held this request. The request's images
 * may be the cause, or innocent bystanders: the pipeline retries them one by one and counts crashes per
 * image, so a poison image is identified and failed after a few.
 */
export class WorkerCrashedError extends GatewayError {
  constructor(
    /** How the worker died: its exit code, or the error it threw. */
    readonly detail: string,
  ) {
    super('WORKER_CRASHED', `the inference worker crashed while processing this request (${detail})`);
    this.name = 'WorkerCrashedError';
  }
}

interface PoolWorker {
  worker: Worker;
  busy: number;
  /** Set once the worker has died: its exit and error events are handled once. */
  dead: boolean;
  /** The error the worker threw, if any, for the crash reason its exit reports. */
  lastError?: string;
  /** The pool's crash count when this worker was started. */
  crashesAtSpawn: number;
}

interface Pending {
  resolve: (value: ImageWorkResult[]) => void;
  reject: (error: Error) => void;
  worker: PoolWorker;
}

interface Queued {
  message: (id: number) => ToWorker;
  resolve: (value: ImageWorkResult[]) => void;
  reject: (error: Error) => void;
}

/**
 * ONNX Runtime's WebGPU provider has one Dawn device per process: sessions running at the same time from two
 * worker threads fail, so that device gets one worker whatever inference.workers says.
 */
function onlyOneWorker(engine: EngineInfo): boolean {
  return engine.engine === 'onnxruntime' && engine.device === 'webgpu';
}

const DEFAULT_BACKOFF: RestartBackoff = { initialMs: 250, maxMs: 30_000 };
const REAL_TIMERS: PoolTimers = {
  setTimeout: (run, ms) => setTimeout(run, ms),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

/**
 * Worker threads that each hold an engine (and its copy of the model). `process` sends a batch of one job's stored files to
 * the least busy worker, which analyses them and writes their outputs there, off the thread that serves DICOM.
 *
 * The pool heals (as BullMQ's ChildPool does): a worker that exits or throws is replaced after a delay that
 * grows while replacements keep failing (bounded by restartBackoff.maxMs); only the requests it held are
 * rejected, with WorkerCrashedError. Requests that arrive while no worker is live wait for the next one.
 */
export class InferencePool {
  private readonly workers: PoolWorker[] = [];
  /** Every worker thread we own, live or starting: stop() terminates them all. */
  private readonly threads = new Set<Worker>();
  private readonly pending = new Map<number, Pending>();
  private readonly queued: Queued[] = [];
  private readonly restartTimers = new Set<unknown>();
  private readonly backoff: RestartBackoff;
  private readonly timers: PoolTimers;
  private nextId = 1;
  private wanted = 0;
  private restarting = 0;
  private crashes = 0;
  /** Replacements that failed in a row (or workers that crashed before finishing any request): the backoff exponent. */
  private failuresInARow = 0;
  private stopped = false;
  /** The engine the first worker chose; the others are made on exactly that engine and device. */
  engine: EngineInfo | undefined;

  private constructor(private readonly options: InferencePoolOptions) {
    this.backoff = { ...DEFAULT_BACKOFF, ...(options.restartBackoff ?? {}) };
    this.timers = options.timers ?? REAL_TIMERS;
  }

  static async start(options: InferencePoolOptions): Promise<InferencePool> {
    const pool = new InferencePool(options);
    try {
      await pool.spawn();
      const engine = pool.engine;
      if (engine === undefined) unreachable('the first inference worker reported no engine');
      logEngineChoice(engine, (message, fields) =>
        options.logger.info(message, { ...fields, model: options.modelDir }),
      );
      pool.wanted =
        options.workers === 'auto' || onlyOneWorker(engine)
          ? engine.engine === 'onnxruntime' || isGpuBackend(engine.device as BackendName)
            ? 1
            : Math.max(1, options.cores - 1)
          : Math.max(1, options.workers);
      // The first worker settled the engine and device; the others are told to use exactly those.
      const rest = Array.from({ length: pool.wanted - 1 }, () => pool.spawn(engine));
      await Promise.all(rest);
    } catch (error) {
      await pool.stop();
      throw error;
    }
    options.logger.info('inference pool ready', {
      event: 'ANALYSIS-5001',
      engine: pool.engine?.engine,
      device: pool.engine?.device,
      backend: pool.backend,
      workers: pool.workers.length,
      model: options.modelDir,
    });
    return pool;
  }

  /** Engine and device as health, metrics and the console show them: 'onnxruntime/cpu', 'tfjs/wasm'. */
  get backend(): string | undefined {
    return this.engine === undefined ? undefined : `${this.engine.engine}/${this.engine.device}`;
  }

  /**
   * What a worker is told to make: the configured choice, or (`fixed`, once the first worker chose) exactly
   * that engine on that device. Intra-op threads 'auto' share the cores out among the workers the pool plans.
   */
  private engineChoice(fixed: EngineInfo | undefined): Omit<EngineChoiceOptions, 'log'> {
    const o = this.options;
    const onnx = o.onnxruntime ?? { executionProviders: [...ONNX_EXECUTION_PROVIDERS], intraOpThreads: 'auto' };
    const planned = o.workers === 'auto' ? 1 : Math.max(1, o.workers);
    const choice: Omit<EngineChoiceOptions, 'log'> = {
      modelDir: o.modelDir,
      engine: o.engine ?? 'auto',
      tfjsBackend: o.backend,
      executionProviders: [...onnx.executionProviders],
      intraOpThreads: onnx.intraOpThreads === 'auto' ? Math.max(1, Math.floor(o.cores / planned)) : onnx.intraOpThreads,
      allowSoftwareGpu: o.allowSoftwareGpu ?? false,
      lrp: o.lrp ?? {},
    };
    if (fixed === undefined) return choice;
    return fixed.engine === 'onnxruntime'
      ? { ...choice, engine: 'onnxruntime', executionProviders: [fixed.device as OnnxExecutionProvider] }
      : { ...choice, engine: 'tfjs', tfjsBackend: fixed.device as BackendName };
  }

  /** Live workers. */
  get size(): number {
    return this.workers.length;
  }

  status(): PoolStatus {
    return { wanted: this.wanted, live: this.workers.length, restarting: this.restarting, crashes: this.crashes };
  }

  /** Infer, explain, render and write one job's images (see analysis/image-work.ts). */
  process(request: ImageWorkRequest): Promise<ImageWorkResult[]> {
    return this.dispatch((id) => ({ type: 'process', id, request }));
  }

  private dispatch(message: (id: number) => ToWorker): Promise<ImageWorkResult[]> {
    if (this.stopped) return Promise.reject(new GatewayError('POOL_STOPPED', 'the inference pool is stopped'));
    return new Promise((resolve, reject) => {
      if (this.workers.length === 0) {
        // Every worker died and replacements are on their way: wait for one rather than fail the images.
        this.queued.push({ message, resolve, reject });
        return;
      }
      this.send({ message, resolve, reject });
    });
  }

  private send(request: Queued): void {
    const target = this.workers.reduce((a, b) => (b.busy < a.busy ? b : a));
    const id = this.nextId++;
    target.busy += 1;
    this.pending.set(id, { resolve: request.resolve, reject: request.reject, worker: target });
    target.worker.postMessage(request.message(id));
  }

  private drainQueue(): void {
    while (this.workers.length > 0 && this.queued.length > 0) {
      const next = this.queued.shift();
      if (next) this.send(next);
    }
  }

  /**
   * Takes no new request, lets the requests in flight finish until `deadline` (epoch ms; default: none, so
   * terminate at once), then terminates every worker: what is still pending is rejected with POOL_STOPPED (the
   * pipeline leaves those images pending for the next start).
   */
  async stop(deadline = 0): Promise<void> {
    this.stopped = true;
    if (deadline > Date.now() && this.pending.size > 0) {
      while (this.pending.size > 0 && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, Math.min(20, Math.max(1, deadline - Date.now()))));
      }
    }
    for (const handle of this.restartTimers) this.timers.clearTimeout(handle);
    this.restartTimers.clear();
    for (const w of this.workers) w.dead = true;
    await Promise.all([...this.threads].map((t) => t.terminate()));
    this.threads.clear();
    this.workers.length = 0;
    const stopped = new GatewayError('POOL_STOPPED', 'the inference pool is stopped');
    for (const p of this.pending.values()) p.reject(stopped);
    this.pending.clear();
    for (const q of this.queued.splice(0)) q.reject(stopped);
  }

  /** A live worker died: reject what it held, take it out, and schedule its replacement. */
  private crashed(entry: PoolWorker, reason: string): void {
    if (entry.dead || this.stopped) return;
    entry.dead = true;
    this.crashes += 1;
    const index = this.workers.indexOf(entry);
    if (index >= 0) this.workers.splice(index, 1);
    let inFlight = 0;
    for (const [id, p] of this.pending) {
      if (p.worker === entry) {
        this.pending.delete(id);
        inFlight += 1;
        p.reject(new WorkerCrashedError(reason));
      }
    }
    this.options.logger.error('inference worker crashed; it will be replaced', {
      event: 'ANALYSIS-5003',
      reason,
      requestsLost: inFlight,
      live: this.workers.length,
      wanted: this.wanted,
      model: this.options.modelDir,
    });
    this.scheduleReplacement();
  }

  private scheduleReplacement(): void {
    if (this.stopped) return;
    const delayMs = Math.min(this.backoff.maxMs, this.backoff.initialMs * 2 ** this.failuresInARow);
    this.failuresInARow += 1;
    this.restarting += 1;
    const handle = this.timers.setTimeout(() => {
      this.restartTimers.delete(handle);
      if (this.stopped) return;
      this.spawn(this.engine).then(
        () => {
          this.restarting -= 1;
          this.options.logger.info('inference worker replaced', {
            event: 'ANALYSIS-5004',
            live: this.workers.length,
            wanted: this.wanted,
            model: this.options.modelDir,
          });
          this.drainQueue();
        },
        (error: unknown) => {
          this.restarting -= 1;
          if (this.stopped) return;
          this.options.logger.error('inference worker could not be replaced; trying again', {
            event: 'ANALYSIS-5005',
            error: error instanceof Error ? error.message : String(error),
            model: this.options.modelDir,
          });
          this.scheduleReplacement();
        },
      );
    }, delayMs);
    this.restartTimers.add(handle);
  }

  private spawn(fixed?: EngineInfo): Promise<PoolWorker> {
    const worker = new Worker(new URL('./inference-worker.js', import.meta.url));
    this.threads.add(worker);
    const entry: PoolWorker = { worker, busy: 0, dead: false, crashesAtSpawn: this.crashes };
    let ready = false;
    return new Promise((resolve, reject) => {
      worker.on('message', (message: FromWorker) => {
        switch (message.type) {
          case 'ready':
            if (this.stopped) return;
            ready = true;
            this.engine ??= message.engine;
            this.workers.push(entry);
            resolve(entry);
            this.drainQueue();
            return;
          case 'init-failed':
            entry.dead = true;
            void worker.terminate();
            reject(new GatewayError(message.code, message.reason));
            return;
          case 'processed':
          case 'failed': {
            const pending = this.pending.get(message.id);
            if (pending === undefined) return;
            this.pending.delete(message.id);
            pending.worker.busy -= 1;
            // A worker started since the last crash finished a request: the pool is healthy again and the next
            // crash starts the backoff afresh. (An older worker finishing proves nothing about replacements.)
            if (pending.worker.crashesAtSpawn === this.crashes) this.failuresInARow = 0;
            if (message.type === 'processed') pending.resolve(message.results);
            else pending.reject(new GatewayError(message.code, message.reason));
            return;
          }
        }
      });
      worker.on('error', (error) => {
        // An exception outside any request's try (or a failed module load): 'exit' follows and handles it.
        entry.lastError = error.message;
      });
      worker.on('exit', (code) => {
        this.threads.delete(worker);
        if (!ready) {
          entry.dead = true;
          reject(
            new GatewayError(
              'INFERENCE_INIT',
              `the inference worker exited while starting (code ${code}${entry.lastError ? `: ${entry.lastError}` : ''})`,
            ),
          );
          return;
        }
        this.crashed(entry, entry.lastError ?? `exit code ${code}`);
      });
      const init: ToWorker = { type: 'init', engine: this.engineChoice(fixed) };
      worker.postMessage(init);
    });
  }
}
