import cron, { type ScheduledTask } from 'node-cron';
import { describeError } from '../errors.js';
import type { Logger } from '../logging/logger.js';

export interface ScheduledTaskSpec {
  name: string;
  /** A cron expression (node-cron, with optional seconds field). */
  schedule: string;
  run: () => void | Promise<void>;
}

/** Cron-scheduled housekeeping; a failing run is logged and the next one still happens. */
export class ScheduledTasks {
  private readonly tasks: ScheduledTask[] = [];

  constructor(
    private readonly specs: readonly ScheduledTaskSpec[],
    private readonly logger: Logger,
  ) {}

  start(): void {
    for (const spec of this.specs) {
      this.tasks.push(
        cron.schedule(spec.schedule, async () => {
          try {
            await spec.run();
          } catch (error) {
            this.logger.error('scheduled task failed', { task: spec.name, error: describeError(error) });
          }
        }, { name: spec.name, noOverlap: true }),
      );
    }
  }

  async stop(): Promise<void> {
    await Promise.all(this.tasks.map((t) => t.stop()));
    this.tasks.length = 0;
  }
}
