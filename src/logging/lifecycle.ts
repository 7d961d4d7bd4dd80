/**
 * One lifecycle for every stage of the daemon (store, analysis, export, pipeline, assembly, SCP, maintenance,
 * admin): the gateway starts them in order, stops them in reverse with ONE shared deadline, and builds /healthz
 * from their status(). It lives with logging because it is a leaf that every layer may import: types and two
 * small helpers; its one import is errors.ts, itself a leaf.
 */
import { GatewayError } from '../errors.js';

export type StageState = 'starting' | 'running' | 'degraded' | 'stopping' | 'stopped';

export interface StageStatus {
  state: StageState;
  /** Sentences an admin can act on; empty when the stage is fine. */
  problems: string[];
  /** Figures worth a glance (in flight, queued, workers...), by name. */
  figures?: Record<string, number>;
}

export interface Stage {
  readonly name: string;
  /** Resolves when the stage takes work; a listener may resolve with its address, which the lifecycle ignores. */
  start(): Promise<unknown>;
  /**
   * Stops taking work, lets the work in flight finish until `deadline` (epoch ms), then aborts what is left
   * (a send in flight answers retry, so it is not recorded as done). Resolves shortly after the deadline at
   * the latest, whatever a peer does.
   */
  stop(deadline: number): Promise<void>;
  status(): StageStatus;
}

/** The abort reason: it may surface as a delivery's or a request's failure, so it carries a catalogue code. */
function deadlineReached(): GatewayError {
  return new GatewayError(
    'SHUTDOWN_DEADLINE',
    'shutdown deadline reached (dicom.shutdownGraceSeconds): the work in flight was cut off',
  );
}

/**
 * An AbortSignal that fires at `deadline` (epoch ms by `now`), or at once when it is past. `dispose` clears the timer when the work ended first.
 */
export function deadlineSignal(
  deadline: number,
  now: () => number = Date.now,
): { signal: AbortSignal; dispose(): void } {
  const controller = new AbortController();
  if (!Number.isFinite(deadline)) return { signal: controller.signal, dispose: () => undefined };
  const left = deadline - now();
  if (left <= 0) {
    controller.abort(deadlineReached());
    return { signal: controller.signal, dispose: () => undefined };
  }
  // Not unref'd: a shutdown waiting on this signal must not let the process exit before the store is closed.
  const timer = setTimeout(() => controller.abort(deadlineReached()), left);
  return { signal: controller.signal, dispose: () => clearTimeout(timer) };
}

/**
 * Waits for `work` until `deadline`: true when it settled in time, false when the deadline came first (the
 * caller then aborts what is left). Never rejects.
 */
export async function settledBy(
  work: Promise<unknown>,
  deadline: number,
  now: () => number = Date.now,
): Promise<boolean> {
  const settled = work.then(
    () => true,
    () => true,
  );
  // setTimeout takes at most 2^31-1 ms (a larger delay fires at once): no deadline means wait for the work.
  if (!Number.isFinite(deadline)) return settled;
  const left = deadline - now();
  if (left <= 0) return Promise.race([settled, Promise.resolve(false)]);
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), left);
  });
  try {
    return await Promise.race([settled, late]);
  } finally {
    clearTimeout(timer);
  }
}
