export type Priority = 'urgent' | 'normal';

export interface BatcherOptions<In, Out> {
  maxBatch: number;
  maxWaitMs: number;
  /** Runs one batch; must return one result per item, in order. */
  run: (items: In[]) => Promise<Out[]>;
  /** Batches allowed in flight at once (e.g. the number of inference workers). */
  concurrency: number;
}

interface Queued<In, Out> {
  item: In;
  resolve: (out: Out) => void;
  reject: (error: unknown) => void;
}

/**
 * Collects single requests into batches: a batch leaves when it is full or when its oldest request has
 * waited maxWaitMs. Urgent requests are always taken before normal ones.
 */
export class Batcher<In, Out> {
  private readonly urgent: Array<Queued<In, Out>> = [];
  private readonly normal: Array<Queued<In, Out>> = [];
  private timer: NodeJS.Timeout | undefined;
  private inFlight = 0;

  constructor(private readonly options: BatcherOptions<In, Out>) {}

  submit(item: In, priority: Priority = 'normal'): Promise<Out> {
    return new Promise((resolve, reject) => {
      (priority === 'urgent' ? this.urgent : this.normal).push({ item, resolve, reject });
      this.pump();
    });
  }

  get queued(): number {
    return this.urgent.length + this.normal.length;
  }

  private pump(): void {
    while (this.inFlight < this.options.concurrency && this.queued >= this.options.maxBatch) this.dispatch();
    if (this.queued > 0 && this.inFlight < this.options.concurrency && this.timer === undefined) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        if (this.queued > 0 && this.inFlight < this.options.concurrency) this.dispatch();
        this.pump();
      }, this.options.maxWaitMs);
    }
  }

  private dispatch(): void {
    const batch = [...this.urgent.splice(0, this.options.maxBatch)];
    batch.push(...this.normal.splice(0, this.options.maxBatch - batch.length));
    if (batch.length === 0) return;
    this.inFlight += 1;
    this.options
      .run(batch.map((q) => q.item))
      .then(
        (results) => batch.forEach((q, i) => q.resolve(results[i] as Out)),
        (error: unknown) => batch.forEach((q) => q.reject(error)),
      )
      .finally(() => {
        this.inFlight -= 1;
        this.pump();
      });
  }
}
