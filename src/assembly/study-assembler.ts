import { describeError } from '../errors.js';
import type { Logger } from '../logging/logger.js';
import type { Stage, StageStatus } from '../logging/lifecycle.js';
import type { JobStore, ReadyStudy } from '../store/job-store.js';

export interface StudyAssemblerOptions {
  store: JobStore;
  quietPeriodMs: number;
  logger: Logger;
  /** Told about every study that became a ready job, after the transaction committed. */
  onReady?: (ready: ReadyStudy) => void;
  now?: () => number;
}

/**
 * Groups instances into studies: a study is complete when no instance has arrived for the quiet period.
 * The clock is the `last_received_at` stored with the study, so a restart picks up exactly where the
 * previous process stopped, and a study that went quiet while the daemon was down is promoted at once.
 */
export class StudyAssembler implements Stage {
  readonly name = 'assembly';
  private timer: NodeJS.Timeout | undefined;
  private state: 'new' | 'running' | 'stopped' = 'new';
  private readonly now: () => number;

  constructor(private readonly options: StudyAssemblerOptions) {
    this.now = options.now ?? Date.now;
  }

  async start(): Promise<void> {
    this.state = 'running';
    this.sweep();
    const tick = Math.min(1000, Math.max(100, this.options.quietPeriodMs / 4));
    this.timer = setInterval(() => this.sweep(), tick);
  }

  /**
   * A sweep is one synchronous transaction, so there is never one in flight to wait for: the deadline is not
   * needed. A study not yet quiet stays `receiving` in the store and is promoted after restart.
   */
  async stop(_deadline?: number): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.state = 'stopped';
  }

  status(): StageStatus {
    return { state: this.state === 'new' ? 'starting' : this.state, problems: [] };
  }

  /** Promotes every study that has been quiet long enough; returns what it promoted. */
  sweep(): ReadyStudy[] {
    const now = this.now();
    let ready: ReadyStudy[];
    try {
      ready = this.options.store.promoteQuietStudies(now - this.options.quietPeriodMs, now);
    } catch (error) {
      // The store may be briefly busy; the next tick tries again and nothing is lost meanwhile.
      this.options.logger.warn('study assembly sweep failed', { event: 'ASSEMBLY-3002', error: describeError(error) });
      return [];
    }
    for (const study of ready) {
      this.options.logger.info('study assembled: job ready', {
        event: 'ASSEMBLY-3001',
        studyInstanceUid: study.studyInstanceUid,
        jobId: study.jobId,
        revision: study.revision,
        instances: study.instanceCount,
      });
      this.options.onReady?.(study);
    }
    return ready;
  }
}
