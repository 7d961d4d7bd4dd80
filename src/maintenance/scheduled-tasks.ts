import cron, { type ScheduledTask } from 'node-cron';
import { describeError } from '../errors.js';
import type { Logger } from '../logging/logger.js';
import { settledBy, type Stage, type StageStatus } from '../logging/lifecycle.js';

export interface ScheduledTaskSpec {
  name: string;
  /** A cron expression (node-cron, with optional seconds field). */
  schedule: string;
  run: () => void | Promise<void>;
}

/** Cron-scheduled housekeeping; a failing run is logged and the next one still happens. */
export class ScheduledTasks implements Stage {
  readonly name = 'maintenance';
  private readonly tasks: ScheduledTask[] = [];
  private state: 'new' | 'running' | 'stopping' | 'stopped' = 'new';
  /** Runs in progress: stop() waits for them until its deadline (a retention purge should not be cut mid-way). */
  private readonly running = new Set<Promise<void>>();

  constructor(
    private readonly specs: readonly ScheduledTaskSpec[],
    private readonly logger: Logger,
  ) {}

  async start(): Promise<void> {
    this.state = 'running';
    for (const spec of this.specs) {
      this.tasks.push(
        cron.schedule(
          spec.schedule,
          async () => {
            const run = (async () => {
              try {
                await spec.run();
              } catch (error) {
                this.logger.error('scheduled task failed', {
                  event: 'MAINT-8001',
                  task: spec.name,
                  error: describeError(error),
                });
              }
            })();
            this.running.add(run);
            try {
              await run;
            } finally {
              this.running.delete(run);
            }
          },
          { name: spec.name, noOverlap: true },
        ),
      );
    }
  }

  /** No new runs; runs in progress may finish until `deadline` (epoch ms; default: do not wait). */
  async stop(deadline = 0): Promise<void> {
    this.state = 'stopping';
    await Promise.all(this.tasks.map((t) => t.stop()));
    this.tasks.length = 0;
    if (this.running.size > 0 && !(await settledBy(Promise.all([...this.running]), deadline))) {
      this.logger.warn(
        'shutdown deadline reached with a scheduled task still running; it runs again at its next time',
        { event: 'MAINT-8002' },
      );
    }
    this.state = 'stopped';
  }

  status(): StageStatus {
    return {
      state: this.state === 'new' ? 'starting' : this.state,
      problems: [],
      figures: { tasks: this.specs.length, running: this.running.size },
    };
  }
}
