import type { DestinationTrouble } from '../export/delivery-watch.js';
import type { StageStatus } from '../logging/lifecycle.js';
import { clusterHealth, type ClusterView } from './cluster-view.js';

/** One part of the daemon's health: what is wrong (sentences for the admin) and the figures behind it. */
export interface HealthPart<T> {
  problems: string[];
  check: T;
}

export interface ModelStatus {
  name: string;
  loaded: boolean;
  backend: string | undefined;
  /** Inference workers alive now. */
  workers: number;
  /** Workers the pool is meant to have; when given, fewer live workers make the daemon degraded. */
  wantedWorkers?: number;
  /** Crashed workers waiting for their replacement, and crashes since start. */
  restartingWorkers?: number;
  workerCrashes?: number;
}

export function storeHealth(ok: boolean): HealthPart<boolean> {
  return { problems: ok ? [] : ['the job store does not answer'], check: ok };
}

export function diskHealth(freeBytes: number, minFreeBytes: number): HealthPart<number> {
  const freeMB = Math.floor(freeBytes / 1048576);
  return {
    problems:
      freeBytes < minFreeBytes ? [`free disk ${freeMB} MB is below storage.minFreeDiskMB: C-STOREs are refused`] : [],
    check: freeMB,
  };
}

export function modelsHealth(models: readonly ModelStatus[]): HealthPart<readonly ModelStatus[]> {
  const problems: string[] = [];
  for (const m of models) {
    if (!m.loaded) problems.push(`model '${m.name}' is not loaded: its studies wait`);
    else if (m.workers === 0) problems.push(`model '${m.name}' has no live inference worker: its studies wait`);
    else if (m.wantedWorkers !== undefined && m.workers < m.wantedWorkers) {
      problems.push(`model '${m.name}' runs ${m.workers} of ${m.wantedWorkers} inference workers: results come slower`);
    }
  }
  return { problems, check: models };
}

export function listenerHealth(listening: boolean): HealthPart<boolean> {
  return { problems: listening ? [] : ['the DICOM listener is not accepting associations'], check: listening };
}

/**
 * Deliveries that keep failing: they retry for as long as it takes (transient causes no longer park), so this
 * is where an outage shows. Degraded once a destination's oldest failing delivery has been failing for
 * delivery.alertAfterMinutes.
 */
export function deliveriesHealth(
  troubles: readonly DestinationTrouble[],
  alertAfterSeconds: number,
): HealthPart<readonly DestinationTrouble[]> {
  const problems = troubles
    .filter((t) => t.oldestFailingSeconds >= alertAfterSeconds)
    .map(
      (t) =>
        `deliveries to '${t.destination}' have been failing for ${formatDuration(t.oldestFailingSeconds)} (${t.failing} waiting, last cause ${t.cause}); ` +
        `they are retried until it answers: see cxr-gateway jobs`,
    );
  return { problems, check: troubles };
}

function formatDuration(seconds: number): string {
  if (seconds < 120) return `${seconds} s`;
  if (seconds < 7200) return `${Math.floor(seconds / 60)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}

/** Parked deliveries of one destination: they wait for an admin and are never retried on their own. */
export interface ParkedCount {
  destination: string;
  parked: number;
}

/**
 * Parked deliveries: the peer refused the items, or they failed past their class's attempt limit. Nothing
 * retries them (not even a restart), so the daemon is degraded until an admin releases or discards each one.
 */
export function parkedHealth(parked: readonly ParkedCount[]): HealthPart<Record<string, number>> {
  const waiting = parked.filter((p) => p.parked > 0);
  const total = waiting.reduce((n, p) => n + p.parked, 0);
  const problems =
    total === 0
      ? []
      : [
          `${total} ${total === 1 ? 'delivery is' : 'deliveries are'} parked (${waiting.map((p) => `${p.parked} to '${p.destination}'`).join(', ')}) ` +
            `and will not be retried on their own: release or discard them on the console's Parked page, or with ` +
            `cxr-gateway deliveries release|discard ID`,
        ];
  return { problems, check: Object.fromEntries(waiting.map((p) => [p.destination, p.parked])) };
}

/** The outcome of one configuration reload (SIGHUP, file change, console rules apply), as the gateway recorded it. */
export interface ReloadRecord {
  /** Epoch ms. */
  at: number;
  ok: boolean;
  /** 'SIGHUP', 'file change', 'console' ... */
  trigger: string;
  /** Why it was refused (null when applied). */
  error: string | null;
}

/**
 * A refused reload leaves the daemon on its previous configuration while the file on disk says otherwise: the
 * admin believes a change is live that is not. Degraded until a later reload succeeds.
 */
export function reloadHealth(last: ReloadRecord | undefined): HealthPart<ReloadRecord | null> {
  if (last === undefined || last.ok) return { problems: [], check: last ?? null };
  return {
    problems: [
      `the configuration reload of ${new Date(last.at).toISOString()} (${last.trigger}) was refused: ${last.error ?? 'no reason given'}; ` +
        `the daemon still runs the previous configuration: fix the file and reload again`,
    ],
    check: last,
  };
}

/** A stage's status() under its name (see logging/lifecycle.ts). */
export interface NamedStatus {
  name: string;
  status: StageStatus;
}

/**
 * The stages of the daemon: one that is not running (still starting, degraded, stopping or stopped) or that
 * names problems makes the daemon degraded; the check lists each stage's state and figures.
 */
export function stagesHealth(stages: readonly NamedStatus[]): HealthPart<Record<string, StageStatus>> {
  const problems: string[] = [];
  for (const { name, status } of stages) {
    if (status.problems.length > 0) problems.push(...status.problems.map((p) => `${name}: ${p}`));
    else if (status.state !== 'running') problems.push(`${name} is ${status.state}`);
  }
  return { problems, check: Object.fromEntries(stages.map((s) => [s.name, s.status])) };
}

export interface Health {
  status: 'ok' | 'degraded';
  problems: string[];
  checks: Record<string, unknown>;
}

export interface HealthSource {
  /** Whether the job store answers a query. */
  storeOk(): boolean;
  freeDiskBytes(): number;
  minFreeDiskBytes: number;
  models(): ModelStatus[];
  dicomListening(): boolean;
  /** Destinations whose deliveries are failing now (none when left out). */
  deliveries?(): DestinationTrouble[];
  /** delivery.alertAfterMinutes in seconds, read at each request (a reload may change it). */
  alertAfterSeconds?(): number;
  /** The daemon's stages and their status() (gateway.ts): a stage not running, or with problems, degrades. */
  stages?(): NamedStatus[];
  /** Parked deliveries by destination (none when left out). */
  parked?(): ParkedCount[];
  /** The last configuration reload's outcome; undefined when none happened since start. */
  lastReload?(): ReloadRecord | undefined;
  /** The nodes of the cluster as the store knows them (cluster-view.ts); no cluster part when left out. */
  cluster?(): ClusterView;
}

/**
 * Built from parts (health.ts): store, disk, models and their workers, DICOM listener, failing and parked
 * deliveries, the last reload, the stages.
 */
export function buildHealth(h: HealthSource): Health {
  const store = storeHealth(h.storeOk());
  const disk = diskHealth(h.freeDiskBytes(), h.minFreeDiskBytes);
  const models = modelsHealth(h.models());
  const dicom = listenerHealth(h.dicomListening());
  const deliveries = deliveriesHealth(h.deliveries?.() ?? [], h.alertAfterSeconds?.() ?? 30 * 60);
  const parked = parkedHealth(h.parked?.() ?? []);
  const reload = reloadHealth(h.lastReload?.());
  const stages = stagesHealth(h.stages?.() ?? []);
  const cluster = clusterPart(h);
  const problems = [store, disk, models, dicom, deliveries, parked, reload, stages, cluster].flatMap((p) => p.problems);
  // Stage problems repeat what a dedicated part said (the listener's); each sentence is shown once.
  const unique = [...new Set(problems)];
  return {
    status: unique.length === 0 ? 'ok' : 'degraded',
    problems: unique,
    checks: {
      store: store.check,
      diskFreeMB: disk.check,
      models: models.check,
      dicomListening: dicom.check,
      failingDeliveries: deliveries.check,
      parkedDeliveries: parked.check,
      lastReload: reload.check,
      stages: stages.check,
      ...(cluster.check === undefined ? {} : { cluster: cluster.check }),
    },
  };
}

/** The cluster part: only this node's drain degrades it; a store that cannot be read is the store part's problem. */
function clusterPart(h: HealthSource): HealthPart<unknown> {
  if (h.cluster === undefined) return { problems: [], check: undefined };
  let view: ClusterView;
  try {
    view = h.cluster();
  } catch {
    return { problems: [], check: { problems: ['the nodes cannot be read from the job store'] } };
  }
  const { nodeProblems, check } = clusterHealth(view);
  return { problems: nodeProblems, check };
}
