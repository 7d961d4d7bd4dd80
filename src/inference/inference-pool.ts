import { Worker } from 'node:worker_threads';
import { GatewayError } from '../errors.js';
import type { Logger } from '../logging/logger.js';
import { isGpuBackend, type BackendName, type BackendPreference } from './backend.js';
import type { ImageOutcome } from './batch-runner.js';
import type { FromWorker, ToWorker } from './worker-protocol.js';
import type { LrpOptions } from '../lrp/composites.js';
import type { ImageWorkRequest, ImageWorkResult } from '../pipeline/image-work.js';

export interface InferencePoolOptions {
  modelDir: string;
  backend: BackendPreference;
  /** Worker threads; `auto`: cores - 1 (at least 1) on CPU backends, 1 on a GPU. */
  workers: number | 'auto';
  cores: number;
  logger: Logger;
  /** Lets the webgpu backend run on a software adapter (tests only: inference.allowSoftwareGpu). */
  allowSoftwareGpu?: boolean;
  /** LRP settings for the workers' explanation engine (`explain` in the config). */
  lrp?: Partial<LrpOptions>;
}

interface PoolWorker {
  worker: Worker;
  busy: number;
}

interface Pending {
  resolve: (value: ImageOutcome[] | ImageWorkResult[]) => void;
  reject: (error: Error) => void;
  worker: PoolWorker;
}

/**
 * Worker threads that each hold a backend and the model. `classify` sends a batch of stored files to the
 * least busy worker, which decodes, preprocesses and runs them there, off the thread that serves DICOM.
 */
export class InferencePool {
  private readonly workers: PoolWorker[] = [];
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  backend: BackendName | undefined;

  private constructor(private readonly options: InferencePoolOptions) {}

  static async start(options: InferencePoolOptions): Promise<InferencePool> {
    const pool = new InferencePool(options);
    await pool.spawn();
    const backend = pool.backend;
    if (backend === undefined) throw new Error('unreachable: first worker reported no backend');
    const wanted =
      options.workers === 'auto' ? (isGpuBackend(backend) ? 1 : Math.max(1, options.cores - 1)) : Math.max(1, options.workers);
    // The first worker settled the backend; the others are told to use exactly that one.
    const rest = Array.from({ length: wanted - 1 }, () => pool.spawn(backend));
    await Promise.all(rest);
    options.logger.info('inference pool ready', { backend, workers: pool.workers.length, model: options.modelDir });
    return pool;
  }

  get size(): number {
    return this.workers.length;
  }

  classify(paths: string[]): Promise<ImageOutcome[]> {
    return this.dispatch((id) => ({ type: 'classify', id, paths })) as Promise<ImageOutcome[]>;
  }

  /** Infer, explain, render and write one job's images (see pipeline/image-work.ts). */
  process(request: ImageWorkRequest): Promise<ImageWorkResult[]> {
    return this.dispatch((id) => ({ type: 'process', id, request })) as Promise<ImageWorkResult[]>;
  }

  private dispatch(message: (id: number) => ToWorker): Promise<ImageOutcome[] | ImageWorkResult[]> {
    if (this.workers.length === 0) return Promise.reject(new Error('inference pool has no worker'));
    const target = this.workers.reduce((a, b) => (b.busy < a.busy ? b : a));
    const id = this.nextId++;
    target.busy += 1;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, worker: target });
      target.worker.postMessage(message(id));
    });
  }

  async stop(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.worker.terminate()));
    this.workers.length = 0;
    for (const p of this.pending.values()) p.reject(new Error('inference pool stopped'));
    this.pending.clear();
  }

  private spawn(backend?: BackendName): Promise<PoolWorker> {
    const worker = new Worker(new URL('./inference-worker.js', import.meta.url));
    const entry: PoolWorker = { worker, busy: 0 };
    return new Promise((resolve, reject) => {
      worker.on('message', (message: FromWorker) => {
        switch (message.type) {
          case 'ready':
            this.backend = message.backend;
            for (const s of message.skipped) this.options.logger.info('inference backend skipped', { backend: s.name, reason: s.reason });
            this.workers.push(entry);
            resolve(entry);
            return;
          case 'init-failed':
            void worker.terminate();
            reject(new GatewayError(message.code, message.reason));
            return;
          case 'classified':
          case 'processed':
          case 'failed': {
            const pending = this.pending.get(message.id);
            if (pending === undefined) return;
            this.pending.delete(message.id);
            pending.worker.busy -= 1;
            if (message.type === 'classified') pending.resolve(message.outcomes);
            else if (message.type === 'processed') pending.resolve(message.results);
            else pending.reject(new Error(message.reason));
            return;
          }
        }
      });
      worker.on('error', (error) => {
        this.options.logger.error('inference worker crashed', { error: error.message });
        for (const [id, p] of this.pending) {
          if (p.worker === entry) {
            this.pending.delete(id);
            p.reject(error);
          }
        }
        const index = this.workers.indexOf(entry);
        if (index >= 0) this.workers.splice(index, 1);
        reject(error);
      });
      const init: ToWorker = { type: 'init', modelDir: this.options.modelDir, backend: backend ?? this.options.backend, allowSoftwareGpu: this.options.allowSoftwareGpu ?? false, lrp: this.options.lrp ?? {} };
      worker.postMessage(init);
    });
  }
}
