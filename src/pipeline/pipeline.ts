import path from 'node:path';
import { nodeNameOf, type GatewayConfig, type NodeRole } from '../config/schema.js';
import type { KeyAttributes } from '../dicom/dataset-walker.js';
import { GatewayError, codedReason, describeError, errorCode } from '../errors.js';
import { checkEligibility, type EligibilityRules } from '../inference/eligibility.js';
import { WorkerCrashedError, type InferencePool } from '../analysis/inference-pool.js';
import type { ModelManifest } from '../inference/model-manifest.js';
import type { Logger } from '../logging/logger.js';
import { DEFAULT_USAGE_NOTICE } from '../reporting/report-inputs.js';
import { readDatasetAttributes } from '../routing/dataset-attributes.js';
import { routeInstance } from '../routing/rule-matcher.js';
import type { ProcessAction } from '../routing/rule-schema.js';
import type { JobStore } from '../store/job-store.js';
import type { ActiveJob, ClaimedJob, Delivery, JobImage, JobToRoute, PipelineStore } from '../store/pipeline-store.js';
import { isOutOfSpace } from '../store/out-of-resources.js';
import { NodeRegistry } from '../store/nodes.js';
import { writeFileAtomic } from '../store/atomic-file.js';
import type { DeliveryOutcome, DeliveryPayload, DeliveryTarget } from '../export/delivery-target.js';
import { DeliveryWatch, type DestinationTrouble } from '../export/delivery-watch.js';
import { NO_SPACE, type ImageWorkResult } from '../analysis/image-work.js';
import { failureClassOf, nextAttemptAt, type RetryPolicy } from '../export/retry-policy.js';
import type { StageTimings } from '../logging/stage-timings.js';
import { settledBy, type Stage, type StageStatus } from '../logging/lifecycle.js';
import { buildStudyReport, studyLevelResult } from './study-report.js';
import {
  imagePositions,
  revisionDir,
  studyObjects,
  supersededRevision,
  type SupersededRevision,
} from './study-objects.js';
import { outputModelInfo } from '../reporting/report-inputs.js';
import { storedAction, storedAttributes, storedPayload, storedResult } from './stored-columns.js';

export interface ModelRuntime {
  pool: InferencePool;
  manifest: ModelManifest;
}

export interface PipelineOptions {
  /** Replaced by updateConfig on a reload. */
  config: GatewayConfig;
  store: JobStore;
  pipelineStore: PipelineStore;
  models: ReadonlyMap<string, ModelRuntime>;
  targets: ReadonlyMap<string, DeliveryTarget>;
  /** Where derived objects and messages are written before delivery (spool/outputs). */
  outputsDir: string;
  logger: Logger;
  /** Where stage durations are summed for /metrics; optional for callers that do not report them. */
  timings?: StageTimings;
  now?: () => number;
  random?: () => number;
  /** Backoff while a job's outputs cannot be written for lack of disk space (default 2 s doubling to 60 s). */
  spaceRetry?: { initialMs: number; maxMs: number };
}

/**
 * The only place that knows the order of the stages: ready job -> route -> infer/explain/write (in the
 * inference workers) -> deliveries to PACS then RIS. Every step reads its input from the store and
 * writes its outcome back in one transaction, so a restart resumes exactly where the last process died.
 */
function retryPolicyOf(config: GatewayConfig): RetryPolicy {
  const d = config.delivery;
  return {
    initialDelayMs: d.initialBackoffSeconds * 1000,
    multiplier: 2,
    maxDelayMs: d.maxBackoffSeconds * 1000,
    maxAttempts: d.maxAttempts,
    transientMaxAttempts: d.transientMaxAttempts,
    permanentMaxAttempts: d.permanentMaxAttempts,
    jitter: 0.2,
  };
}

/**
 * A delivery waiting for a destination that is not live looks again at least this often, so that one added by
 * a reload is used within a minute even when the backoff has grown to delivery.maxBackoffSeconds.
 */
const DESTINATION_WAIT_MAX_MS = 60_000;

/** How often the delivery timer looks again when only held-back deliveries are pending (see scheduleDeliveries). */
const HELD_BACK_POLL_MS = 1_000;

/** The cause code a stored last_error starts with (`cause: sentence`), for deliveries found after a restart. */
function causeOfStored(lastError: string | null): string {
  return /^([a-z][a-z0-9-]{1,40}): /.exec(lastError ?? '')?.[1] ?? 'unknown';
}

/** This node in the cluster (cluster.* at start; a reload does not change who a running node is). */
interface ClusterNode {
  name: string;
  roles: ReadonlySet<NodeRole>;
  leaseMs: number;
  heartbeatMs: number;
}

export class Pipeline implements Stage {
  readonly name = 'pipeline';
  private readonly options: PipelineOptions;
  private readonly node: ClusterNode;
  private readonly nodes: NodeRegistry;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  /** The jobs and deliveries this node is working on (leasedWork): the only leases its heartbeat renews. */
  private readonly workingOn = { jobs: new Set<number>(), deliveries: new Set<number>() };
  private readonly now: () => number;
  private readonly random: () => number;
  private policy: RetryPolicy;
  private running = false;
  private processing: Promise<void> | undefined;
  private delivering: Promise<void> | undefined;
  private wakeAgain = false;
  private deliveryTimer: NodeJS.Timeout | undefined;
  /** Jobs waiting for disk space: how many times in a row each has waited (the backoff exponent). */
  private readonly spaceWaits = new Map<number, number>();
  private readonly spaceRetry: { initialMs: number; maxMs: number };
  private spaceTimer: NodeJS.Timeout | undefined;
  private spaceTimerDue = 0;
  private targets: ReadonlyMap<string, DeliveryTarget>;
  private readonly watch = new DeliveryWatch();
  private state: 'new' | 'running' | 'stopping' | 'stopped' = 'new';
  /** Fires at the shutdown deadline: every delivery in flight gets its signal and ends with a `stopped` retry. */
  private readonly shutdown = new AbortController();

  constructor(options: PipelineOptions) {
    const cluster = options.config.cluster;
    this.node = {
      name: nodeNameOf(cluster),
      roles: new Set(cluster.roles),
      leaseMs: cluster.leaseSeconds * 1000,
      heartbeatMs: cluster.heartbeatSeconds * 1000,
    };
    // Every job and delivery this pipeline works on is claimed under this node's lease, and each of its transitions
    // is checked against it (the caller's store may be the plain one it also reads and sets up with).
    const held =
      options.pipelineStore.node === undefined ? options.pipelineStore.as(this.node.name) : options.pipelineStore;
    this.options = { ...options, pipelineStore: held };
    this.nodes = new NodeRegistry(options.store.connection);
    this.now = options.now ?? Date.now;
    this.spaceRetry = options.spaceRetry ?? { initialMs: 2000, maxMs: 60_000 };
    this.random = options.random ?? Math.random;
    this.policy = retryPolicyOf(options.config);
    this.targets = options.targets;
  }

  /**
   * A reloaded configuration: rules, eligibility, explanation target and retry policy take effect for
   * the next job; `targets`, when given, are the live destinations from now on (the caller created the new
   * ones before and retires the old ones after). Models are fixed at start (the caller says so in the log).
   */
  updateConfig(config: GatewayConfig, targets?: ReadonlyMap<string, DeliveryTarget>): void {
    this.options.config = config;
    this.policy = retryPolicyOf(config);
    if (targets !== undefined) this.targets = targets;
    this.wake();
  }

  async start(): Promise<void> {
    this.running = true;
    this.state = 'running';
    const now = this.now();
    // This node's row; what a process of the same name held before (it is gone: this one replaces it) is let go.
    this.nodes.register(this.node.name, [...this.node.roles], now);
    this.options.logger.info('node joined the cluster', {
      event: 'PIPELINE-4014',
      node: this.node.name,
      roles: [...this.node.roles],
      leaseSeconds: this.node.leaseMs / 1000,
      heartbeatSeconds: this.node.heartbeatMs / 1000,
    });
    this.heartbeatTimer = setInterval(() => this.heartbeat(), this.node.heartbeatMs);
    // Never what keeps the process alive: stop() ends it, and a node that stops beating loses its leases anyway.
    this.heartbeatTimer.unref();
    // Deliveries that were failing before a restart are failing still, as far as anyone can tell: watched from now.
    if (this.node.roles.has('deliver'))
      for (const d of this.options.pipelineStore.deliveries()) {
        if (d.state === 'pending' && d.attempts > 0)
          this.watch.failed(d.id, d.destination, causeOfStored(d.lastError), now);
      }
    this.wake();
  }

  /**
   * This node is alive: its row's heartbeat, and the leases of what it works on renewed for another leaseSeconds (a
   * lease left behind by a failed release goes back instead, and the stages wake to claim it again). Where the store
   * has no change counter for the store watch (PostgreSQL), it also wakes the stages: work that other nodes queued (a
   * study received there, deliveries written there) is found at the next beat.
   */
  heartbeat(): void {
    const now = this.now();
    let released: number;
    try {
      released = this.nodes.heartbeat(this.node.name, now, now + this.node.leaseMs, {
        jobs: [...this.workingOn.jobs],
        deliveries: [...this.workingOn.deliveries],
      });
    } catch (error) {
      this.options.logger.warn('heartbeat failed; tried again at the next one', {
        event: 'PIPELINE-4013',
        node: this.node.name,
        error: describeError(error),
      });
      return;
    }
    if (released > 0)
      this.options.logger.warn('leases this node no longer worked on were given back by its heartbeat', {
        event: 'PIPELINE-4016',
        node: this.node.name,
        released,
      });
    if (released > 0 || this.options.store.dataVersion() === undefined) this.wake();
  }

  /** Destinations whose deliveries are failing, the oldest first (for /metrics and /healthz). */
  deliveryTroubles(): DestinationTrouble[] {
    return this.watch.troubles(this.now());
  }

  /** Something changed (a study became ready, a delivery fell due): run the stages. */
  wake(): void {
    if (!this.running) return;
    if (this.processing) {
      this.wakeAgain = true;
    } else {
      this.processing = this.processAll().finally(() => {
        this.processing = undefined;
        // Processing queued deliveries: send them now rather than at the next event.
        this.scheduleDeliveries(0);
        if (this.wakeAgain) {
          this.wakeAgain = false;
          this.wake();
        }
      });
    }
    this.scheduleDeliveries(0);
  }

  /**
   * Takes no new job or delivery, lets the ones in flight finish until `deadline` (epoch ms, by the injected
   * clock), then aborts the deliveries in flight: each ends with a `stopped` retry and stays pending in the
   * store, sent again after restart. Images in the worker pool are not waited for past the deadline: stopping
   * the pool (after this) ends them, and they stay pending; drained() waits for that before the store closes.
   * Without a deadline it waits for everything in flight.
   */
  async stop(deadline: number = Number.POSITIVE_INFINITY): Promise<void> {
    if (this.state === 'stopped') return;
    this.running = false;
    this.state = 'stopping';
    if (this.deliveryTimer) clearTimeout(this.deliveryTimer);
    if (this.spaceTimer) clearTimeout(this.spaceTimer);
    // Beats go on while the work in flight finishes (its leases must not run out meanwhile), then end.
    const inFlight = Promise.allSettled([this.processing, this.delivering]);
    if (!(await settledBy(inFlight, deadline, this.now))) {
      const { logger } = this.options;
      logger.warn(
        'shutdown deadline reached: aborting the deliveries in flight; they stay pending and are sent again after restart',
        {
          event: 'PIPELINE-4009',
          delivering: this.delivering !== undefined,
          processing: this.processing !== undefined,
        },
      );
      this.shutdown.abort();
      await this.delivering;
    }
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    this.state = 'stopped';
  }

  /** Resolves when no job pass or delivery pass is running (after stop() and the pool's stop). */
  async drained(): Promise<void> {
    await Promise.allSettled([this.processing, this.delivering]);
  }

  status(): StageStatus {
    const state = this.state === 'new' ? 'starting' : this.state;
    return {
      state,
      problems: [],
      figures: {
        processing: this.processing === undefined ? 0 : 1,
        delivering: this.delivering === undefined ? 0 : 1,
        // Figures are numbers (/metrics renders them): each role 1 where this node has it. Its name is in the log
        // (PIPELINE-4014) and in the nodes table.
        roleReceive: this.node.roles.has('receive') ? 1 : 0,
        roleAnalyze: this.node.roles.has('analyze') ? 1 : 0,
        roleDeliver: this.node.roles.has('deliver') ? 1 : 0,
      },
    };
  }

  /** The target with the shutdown deadline's signal passed to its deliveries. */
  private withDeadline(target: DeliveryTarget | undefined): DeliveryTarget | undefined {
    if (target === undefined) return undefined;
    const signal = this.shutdown.signal;
    return { name: target.name, kind: target.kind, deliver: (payload) => target.deliver(payload, signal) };
  }

  private async processAll(): Promise<void> {
    const { pipelineStore, logger } = this.options;
    if (!this.node.roles.has('analyze')) return;
    const { leaseMs } = this.node;
    try {
      const lanes = Math.max(
        1,
        [...this.options.models.values()].reduce((n, m) => n + m.pool.size, 0),
      );
      // Jobs this node had in this pass (done, waiting or given back): not claimed again until the next pass.
      const taken = new Set<number>();
      // Each lane asks for its next job only when it is free, routing whatever became ready meanwhile:
      // an urgent study that arrives during a backlog goes next, not after the backlog. Every job is claimed under
      // this node's lease first (other nodes take the others). A revision is not claimed while the study's earlier
      // ones are still processing: it must see what they sent to supersede it (the rejection note, the SR's
      // predecessor); the lane that finishes the earlier one takes it.
      const next = (): ActiveJob | undefined => {
        for (
          let r = pipelineStore.claimReadyJob(this.now(), leaseMs);
          r;
          r = pipelineStore.claimReadyJob(this.now(), leaseMs)
        ) {
          this.logTakeover(r);
          this.leasedWork({ jobId: r.jobId }, () => this.route(r.jobId, r.studyInstanceUid, r.revision));
        }
        const job = pipelineStore.claimActiveJob(this.now(), leaseMs, [...taken]);
        if (job) {
          taken.add(job.jobId);
          this.logTakeover(job);
        }
        return job;
      };
      await Promise.all(
        Array.from({ length: lanes }, async () => {
          while (this.running) {
            const job = next();
            if (job === undefined) return;
            await this.leasedWork({ jobId: job.jobId }, () => this.processJob(job));
          }
        }),
      );
    } catch (error) {
      logger.error('pipeline pass failed; it runs again on the next event', {
        event: 'PIPELINE-4008',
        error: describeError(error),
      });
    }
  }

  /**
   * A claimed job whose lease had run out on another node (or on this node's name before a restart): the moment a
   * dead node's work moves, which operators (and the takeover-time check) look for.
   */
  private logTakeover(job: ClaimedJob<JobToRoute>): void {
    if (job.takenOverFrom === undefined) return;
    this.options.logger.info("job taken over: its holder's lease ran out", {
      event: 'PIPELINE-4015',
      jobId: job.jobId,
      studyInstanceUid: job.studyInstanceUid,
      revision: job.revision,
      node: this.node.name,
      from: job.takenOverFrom,
    });
  }

  /**
   * Work on a job or delivery this node claimed: a lease taken over meanwhile by another node (this one stopped
   * renewing it) ends the work here with a warning, the other node finishing it; the lease goes back whatever
   * happens (a job that waits or failed to load its model may be taken by any node, or by this one next pass).
   */
  private leasedWork<T>(
    id: { jobId: number } | { deliveryId: number },
    work: () => T,
  ): T extends Promise<unknown> ? Promise<void> : void;
  private leasedWork(id: { jobId: number } | { deliveryId: number }, work: () => unknown): Promise<void> | void {
    const { pipelineStore, logger } = this.options;
    const lost = (error: unknown): void => {
      if (!(error instanceof GatewayError) || error.code !== 'LEASE_LOST') throw error;
      logger.warn('lease lost: another node took the work over; this node drops its result', {
        event: 'PIPELINE-4012',
        node: this.node.name,
        ...id,
        why: error.message,
      });
    };
    const key = 'jobId' in id ? id.jobId : id.deliveryId;
    const working = 'jobId' in id ? this.workingOn.jobs : this.workingOn.deliveries;
    working.add(key);
    const release = (): void => {
      // No longer worked on, whether or not the store takes the release: a lease left behind (the disk full) is
      // given back by the next heartbeat instead of being renewed by it.
      working.delete(key);
      try {
        if ('jobId' in id) pipelineStore.releaseJob(id.jobId);
        else pipelineStore.releaseDelivery(id.deliveryId);
      } catch {
        // The store is out of reach or full: the next heartbeat gives the lease back (or, with the store out of
        // reach for longer, it runs out by itself after cluster.leaseSeconds).
      }
    };
    let result: unknown;
    try {
      result = work();
    } catch (error) {
      release();
      return lost(error);
    }
    if (!(result instanceof Promise)) {
      release();
      return;
    }
    return result.then(
      () => release(),
      (error: unknown) => {
        release();
        lost(error);
      },
    );
  }

  private route(jobId: number, studyInstanceUid: string, revision: number): void {
    const { config, pipelineStore, logger } = this.options;
    const instances = pipelineStore.studyInstances(studyInstanceUid);
    // Each image is routed on its own (a study may hold a PA and a lateral); the first image whose rule
    // processes decides the study's model, outputs, destinations and priority.
    let chosen: { rule: string; action: ProcessAction } | undefined;
    const images: Array<{ sopInstanceUid: string; path: string }> = [];
    const reasons: string[] = [];
    for (const instance of instances) {
      let decision;
      try {
        decision = routeInstance(config.rules, {
          callingAe: instance.callingAe,
          calledAe: instance.calledAe,
          sourceIp: instance.sourceIp,
          attribute: readDatasetAttributes(instance.path),
        });
      } catch (error) {
        reasons.push(`${instance.sopInstanceUid}: ${describeError(error)}`);
        continue;
      }
      const rule = decision.rule;
      if (rule === undefined || rule.action.ignore === true) {
        reasons.push(`${instance.sopInstanceUid}: ${rule ? `rule '${rule.name}' ignores it` : 'no rule matches'}`);
        continue;
      }
      chosen ??= { rule: rule.name, action: rule.action };
      images.push(instance);
    }
    const now = this.now();
    if (chosen === undefined) {
      pipelineStore.routeJob(jobId, { ignored: reasons.join('; ') || 'the study has no instances' }, now);
      logger.info('job ignored by routing', {
        event: 'PIPELINE-4002',
        jobId,
        studyInstanceUid,
        revision,
        why: reasons.join('; '),
      });
      return;
    }
    pipelineStore.routeJob(
      jobId,
      { rule: chosen.rule, action: JSON.stringify(chosen.action), priority: chosen.action.priority, images },
      now,
    );
    logger.info('job routed', {
      event: 'PIPELINE-4001',
      jobId,
      studyInstanceUid,
      revision,
      rule: chosen.rule,
      priority: chosen.action.priority,
      images: images.length,
    });
  }

  private async processJob(job: ActiveJob): Promise<void> {
    const { config, pipelineStore, store, logger } = this.options;
    // Waiting (for disk space): a timer wakes the pipeline when it is due (set here too, for a job that
    // was already waiting when the daemon started).
    if (job.nextAttemptAt !== null && job.nextAttemptAt > this.now()) return this.wakeAt(job.nextAttemptAt);
    const action = readOrError(() => storedAction(job));
    if (action instanceof GatewayError) return this.failUnreadable(job, action);
    const model = this.options.models.get(action.model);
    const ids = { jobId: job.jobId, studyInstanceUid: job.studyInstanceUid, revision: job.revision };
    if (model === undefined) {
      // The model failed to load at start (logged then); the job waits for a restart with a working model.
      logger.warn('job waits: its model is not loaded', { event: 'PIPELINE-4003', ...ids, model: action.model });
      return;
    }
    pipelineStore.beginAttempt(job.jobId, this.now());
    const rules: EligibilityRules = { ...config.inference.eligibility, ...(action.eligibility ?? {}) };
    const attributesOf = new Map(
      pipelineStore
        .studyInstances(job.studyInstanceUid)
        .map((i) => [i.sopInstanceUid, readOrError(() => storedAttributes(i))]),
    );
    const pending = pipelineStore.jobImages(job.jobId).filter((i) => i.state === 'pending');
    const toProcess: JobImage[] = [];
    for (const image of pending) {
      const attributes: KeyAttributes | GatewayError = attributesOf.get(image.sopInstanceUid) ?? {};
      if (attributes instanceof GatewayError) {
        // That image alone fails; the job's other images go on.
        pipelineStore.recordImage(
          job.jobId,
          image.sopInstanceUid,
          { state: 'failed', reason: `${attributes.code}: ${attributes.message}` },
          this.now(),
        );
        logger.error('image failed: its stored attributes cannot be read', {
          event: 'PIPELINE-4010',
          ...ids,
          sopInstanceUid: image.sopInstanceUid,
          code: attributes.code,
          why: attributes.message,
        });
        continue;
      }
      const verdict = checkEligibility(attributes, rules);
      if (verdict.eligible) toProcess.push(image);
      else
        pipelineStore.recordImage(
          job.jobId,
          image.sopInstanceUid,
          { state: 'skipped', reason: verdict.reason },
          this.now(),
        );
    }
    const outDir = revisionDir(this.options.outputsDir, job.studyInstanceUid, job.revision);
    // What this revision corrects: its objects say so, and a rejection note withdraws what that revision sent.
    const superseded = readOrError(() =>
      supersededRevision(pipelineStore, this.options.outputsDir, job.studyInstanceUid, job.revision),
    );
    if (superseded instanceof GatewayError) return this.failUnreadable(job, superseded);
    // Numbered among the images that are processed (skipped ones take no place), the same on every attempt.
    const positions = imagePositions(pipelineStore.jobImages(job.jobId).filter((i) => i.state !== 'skipped'));
    const createdAt = new Date(store.jobCreatedAt(job.jobId) ?? this.now()).toISOString();
    // An image a worker already died on goes alone: if it is the poison, it takes no other image down again.
    const suspects = toProcess.filter((i) => i.crashes > 0);
    const rest = toProcess.filter((i) => i.crashes === 0);
    const batches: JobImage[][] = suspects.map((i) => [i]);
    for (let i = 0; i < rest.length; i += config.inference.maxBatch)
      batches.push(rest.slice(i, i + config.inference.maxBatch));
    for (let batch = batches.shift(); batch !== undefined; batch = batches.shift()) {
      let results: ImageWorkResult[];
      try {
        results = await model.pool.process({
          images: batch.map((i) => ({
            sopInstanceUid: i.sopInstanceUid,
            path: i.path,
            instanceNumber: positions.get(i.sopInstanceUid),
          })),
          outputs: action.outputs,
          revision: job.revision,
          ...(superseded === undefined ? {} : { supersedesRevision: superseded.revision }),
          createdAt,
          outDir,
          target: config.explain.target,
          usageNotice: DEFAULT_USAGE_NOTICE,
          scEncoding: config.secondaryCapture,
        });
      } catch (error) {
        if (error instanceof WorkerCrashedError) {
          batches.unshift(...this.afterCrash(job, batch, error).map((i) => [i]));
          continue;
        }
        // A stopped pool: the images stay pending and the job is retried on the next pass.
        logger.error('image processing failed; the job stays pending', {
          event: 'ANALYSIS-5012',
          ...ids,
          code: errorCode(error, 'PROCESSING_FAILED'),
          error: describeError(error),
        });
        return;
      }
      let noSpace: string | undefined;
      for (const r of results) {
        if (r.kind === 'written') {
          pipelineStore.recordImage(
            job.jobId,
            r.sopInstanceUid,
            { state: 'written', result: JSON.stringify(r) },
            this.now(),
          );
          this.options.timings?.observeAll(r.stageMs);
          logger.info('image classified and explained', {
            event: 'ANALYSIS-5010',
            ...ids,
            sopInstanceUid: r.sopInstanceUid,
            predicted: r.classification.predicted,
            outputs: r.outputs.length,
            stageMs: roundMs(r.stageMs),
          });
          for (const o of r.outputs)
            if (o.downscaled !== undefined)
              logger.info('heatmap SC scaled down to fit the size cap', {
                event: 'ANALYSIS-5017',
                ...ids,
                sopInstanceUid: o.sopInstanceUid,
                from: `${o.downscaled.from.columns}x${o.downscaled.from.rows}`,
                to: `${o.downscaled.to.columns}x${o.downscaled.to.rows}`,
                maxBytes: o.downscaled.maxBytes,
              });
        } else if (r.code === NO_SPACE) {
          // Not the image's fault: it stays pending and the job is tried again once there is room.
          noSpace ??= r.reason;
        } else {
          pipelineStore.recordImage(
            job.jobId,
            r.sopInstanceUid,
            { state: 'failed', reason: codedReason(r.code, r.reason) },
            this.now(),
          );
          logger.warn('image failed', {
            event: 'ANALYSIS-5011',
            ...ids,
            sopInstanceUid: r.sopInstanceUid,
            code: r.code,
            why: r.reason,
          });
        }
      }
      if (noSpace !== undefined) return this.waitForSpace(job, noSpace);
    }
    await this.finishJob(job, action, model.manifest, createdAt, { superseded, positions });
  }

  /**
   * A worker died holding `batch`: each image's crash is counted in the store. One that reached
   * inference.maxCrashesPerImage is failed with that reason; the others are returned, to go one by one,
   * so that the next crash names the poison image.
   */
  private afterCrash(job: ActiveJob, batch: JobImage[], error: WorkerCrashedError): JobImage[] {
    const { pipelineStore, logger, config } = this.options;
    const ids = { jobId: job.jobId, studyInstanceUid: job.studyInstanceUid, revision: job.revision };
    const max = config.inference.maxCrashesPerImage;
    const counts = pipelineStore.recordCrash(
      job.jobId,
      batch.map((i) => i.sopInstanceUid),
      this.now(),
    );
    const again: JobImage[] = [];
    for (const image of batch) {
      const crashes = counts.get(image.sopInstanceUid) ?? max;
      if (crashes >= max) {
        const reason = codedReason(
          'WORKER_CRASHED',
          `the inference worker crashed ${crashes} times on this image (last: ${error.detail})`,
        );
        pipelineStore.recordImage(job.jobId, image.sopInstanceUid, { state: 'failed', reason }, this.now());
        logger.error('image failed: the inference worker crashed on it every time (a poison image)', {
          event: 'ANALYSIS-5013',
          ...ids,
          sopInstanceUid: image.sopInstanceUid,
          crashes,
        });
      } else {
        again.push({ ...image, crashes });
      }
    }
    if (again.length > 0) {
      logger.warn('an inference worker crashed while holding these images; they are tried again one by one', {
        event: 'ANALYSIS-5014',
        ...ids,
        sopInstanceUids: again.map((i) => i.sopInstanceUid),
        maxCrashesPerImage: max,
      });
    }
    return again;
  }

  /** A JSON column of the job cannot be read back (STORED_JSON_INVALID): the job fails with that reason, the others go on. */
  private failUnreadable(job: ActiveJob, error: GatewayError): void {
    const reason = `${error.code}: ${error.message}`;
    this.options.pipelineStore.finishProcessing(job.jobId, { state: 'failed', reason }, this.now());
    this.spaceWaits.delete(job.jobId);
    this.options.logger.error('job failed: its stored state cannot be read', {
      event: 'PIPELINE-4011',
      jobId: job.jobId,
      studyInstanceUid: job.studyInstanceUid,
      revision: job.revision,
      code: error.code,
      why: error.message,
    });
  }

  /** No room for the job's outputs: it stays processing and is tried again later, with a capped backoff. */
  private waitForSpace(job: ActiveJob, reason: string): void {
    const waits = this.spaceWaits.get(job.jobId) ?? 0;
    this.spaceWaits.set(job.jobId, waits + 1);
    const { initialMs, maxMs } = this.spaceRetry;
    const delayMs = Math.min(maxMs, initialMs * 2 ** waits);
    const now = this.now();
    this.options.pipelineStore.deferJob(
      job.jobId,
      now + delayMs,
      codedReason('NO_SPACE', `waiting for disk space: ${reason}`),
      now,
    );
    this.options.logger.warn("no disk space for the job's outputs: it waits and is tried again", {
      event: 'PIPELINE-4004',
      jobId: job.jobId,
      studyInstanceUid: job.studyInstanceUid,
      revision: job.revision,
      why: reason,
      retryInMs: delayMs,
      waits: waits + 1,
    });
    this.wakeAt(now + delayMs);
  }

  /** Runs the stages again at `due` (by the injected clock), unless a wake-up is already set for earlier. */
  private wakeAt(due: number): void {
    if (this.spaceTimer !== undefined && this.spaceTimerDue <= due) return;
    if (this.spaceTimer) clearTimeout(this.spaceTimer);
    this.spaceTimerDue = due;
    // +1: a timer may fire a hair before the wall clock reaches `due`, and the job would be skipped again.
    this.spaceTimer = setTimeout(
      () => {
        this.spaceTimer = undefined;
        this.wake();
      },
      Math.max(0, due - this.now()) + 1,
    );
    // Never what keeps the process alive: stop() ends the pipeline without waiting for it.
    this.spaceTimer.unref();
  }

  private async finishJob(
    job: ActiveJob,
    action: ProcessAction,
    manifest: ModelManifest,
    createdAt: string,
    layout: { superseded: SupersededRevision | undefined; positions: ReadonlyMap<string, number> },
  ): Promise<void> {
    const { pipelineStore, config, logger } = this.options;
    const images = pipelineStore.jobImages(job.jobId);
    const place = (sop: string) => layout.positions.get(sop) ?? Number.POSITIVE_INFINITY;
    const written = readOrError(() =>
      images
        .flatMap((i) => (i.state === 'written' ? [storedResult(i)] : []))
        .sort((a, b) => place(a.sopInstanceUid) - place(b.sopInstanceUid)),
    );
    if (written instanceof GatewayError) return this.failUnreadable(job, written);
    const ids = { jobId: job.jobId, studyInstanceUid: job.studyInstanceUid, revision: job.revision };
    const now = this.now();
    if (written.length === 0) {
      const failed = images.some((i) => i.state === 'failed');
      const reason = images.map((i) => `${i.sopInstanceUid}: ${i.reason ?? i.state}`).join('; ');
      pipelineStore.finishProcessing(
        job.jobId,
        {
          state: failed ? 'failed' : 'ignored',
          reason: failed ? codedReason('IMAGES_FAILED', reason) : `no eligible image (${reason})`,
        },
        now,
      );
      this.spaceWaits.delete(job.jobId);
      logger.info(failed ? 'job failed: no image could be processed' : 'job ignored: no eligible image', {
        event: failed ? 'PIPELINE-4005' : 'PIPELINE-4006',
        ...ids,
        why: reason,
      });
      return;
    }
    // Once per study revision, here rather than per image in the workers: the SR covering every image, and the
    // rejection note withdrawing what the superseded revision sent. Both derive their UIDs, so a resumed job
    // writes the same files again.
    const dir = revisionDir(this.options.outputsDir, job.studyInstanceUid, job.revision);
    const study = await studyObjects({
      results: written,
      sourcePaths: new Map(images.map((i) => [i.sopInstanceUid, i.path])),
      model: outputModelInfo(manifest),
      revision: job.revision,
      superseded: layout.superseded,
      withSr: action.outputs.includes('sr'),
      createdAt: new Date(createdAt),
      usageNotice: DEFAULT_USAGE_NOTICE,
    });
    const fileOf = (o: { sopInstanceUid: string }) => path.join(dir, `${o.sopInstanceUid}.dcm`);
    try {
      for (const object of [study.sr, study.rejection])
        if (object !== undefined) await writeFileAtomic(dir, `${object.sopInstanceUid}.dcm`, object.bytes);
    } catch (error) {
      if (isOutOfSpace(error))
        return this.waitForSpace(job, `no disk space for the study's SR or rejection note: ${describeError(error)}`);
      throw error;
    }
    const deliveries: Array<{ kind: 'pacs' | 'ris'; destination: string; payload: string }> = [];
    // The heatmaps in their series' order, then the SR, then (where the PACS takes it) the rejection note: after
    // the objects that replace what it withdraws.
    const files = [...written.flatMap((w) => w.outputs.map((o) => o.path)), ...(study.sr ? [fileOf(study.sr)] : [])];
    for (const name of action.pacs) {
      const pacs = config.destinations.pacs.find((d) => d.name === name);
      const reject = study.rejection !== undefined && (pacs?.rejectSuperseded ?? true);
      deliveries.push({
        kind: 'pacs',
        destination: name,
        payload: JSON.stringify({
          kind: 'pacs',
          files: reject && study.rejection ? [...files, fileOf(study.rejection)] : files,
        } satisfies DeliveryPayload),
      });
    }
    const best = studyLevelResult(written);
    const source = best && images.find((i) => i.sopInstanceUid === best.sopInstanceUid);
    for (const name of action.ris) {
      const ris = config.destinations.ris.find((d) => d.name === name);
      if (!ris || !best || !source) continue;
      const report = buildStudyReport({
        studyInstanceUid: job.studyInstanceUid,
        revision: job.revision,
        sourcePath: source.path,
        result: best,
        results: written,
        priority: action.priority,
        manifest,
        ris,
        createdAt: new Date(createdAt),
      });
      const file = path.join(dir, `${report.controlId}.hl7`);
      try {
        await writeFileAtomic(dir, `${report.controlId}.hl7`, Buffer.from(report.message, 'utf8'));
      } catch (error) {
        if (isOutOfSpace(error))
          return this.waitForSpace(job, `no disk space for the HL7 report: ${describeError(error)}`);
        throw error;
      }
      deliveries.push({
        kind: 'ris',
        destination: name,
        payload: JSON.stringify({ kind: 'ris', file, controlId: report.controlId } satisfies DeliveryPayload),
      });
    }
    // A done job whose images partly failed says why (jobs --json lastError), not null.
    const failed = images.filter((i) => i.state === 'failed');
    const imageProblems =
      failed.length === 0
        ? null
        : codedReason(
            'IMAGES_FAILED',
            `${failed.length} of ${images.length} image(s) failed: ${failed.map((i) => `${i.sopInstanceUid}: ${i.reason ?? 'failed'}`).join('; ')}`,
          );
    pipelineStore.finishProcessing(job.jobId, { deliveries, imageProblems }, now);
    this.spaceWaits.delete(job.jobId);
    logger.info('job written: deliveries queued', {
      event: 'PIPELINE-4007',
      ...ids,
      deliveries: deliveries.length,
      images: written.length,
      imagesFailed: failed.length,
      sr: study.sr?.sopInstanceUid ?? null,
      supersedes: layout.superseded?.revision ?? null,
      rejectionNote: study.rejection?.sopInstanceUid ?? null,
    });
    this.scheduleDeliveries(0);
  }

  private scheduleDeliveries(delayMs: number): void {
    if (!this.running || !this.node.roles.has('deliver')) return;
    if (this.deliveryTimer) clearTimeout(this.deliveryTimer);
    this.deliveryTimer = setTimeout(() => {
      this.deliveryTimer = undefined;
      if (this.delivering) return this.scheduleDeliveries(100);
      this.delivering = this.deliverDue().finally(() => {
        this.delivering = undefined;
        const { pipelineStore } = this.options;
        const now = this.now();
        const next = pipelineStore.nextDeliveryAt();
        if (next === undefined) return;
        if (next > now) return this.scheduleDeliveries(Math.max(50, next - now));
        // Past its time: either queued during the pass (go now), or held back behind another delivery (a RIS
        // report behind its PACS delivery, which may be in a long backoff): then look again each second, not
        // every 50 ms for the whole outage.
        // Deliveries leased by another node count as held back: that node settles them.
        this.scheduleDeliveries(pipelineStore.hasClaimableDelivery(now) ? 0 : HELD_BACK_POLL_MS);
      });
    }, delayMs);
  }

  /**
   * One delivery pass now, after any pass in progress: what the delivery timer does, for a caller that moves
   * its own clock (tests with an injected clock run days of retries this way in milliseconds).
   */
  async deliverDueNow(): Promise<void> {
    if (!this.node.roles.has('deliver')) return;
    while (this.delivering) await this.delivering;
    const pass = this.deliverDue().finally(() => {
      if (this.delivering === pass) this.delivering = undefined;
    });
    this.delivering = pass;
    await pass;
  }

  private async deliverDue(): Promise<void> {
    const { pipelineStore } = this.options;
    // One lane per destination, each taking its next due delivery (asking again after each: an urgent delivery
    // never waits behind a batch of normal ones). A destination that is slow to answer, or a PACS that takes its
    // time to confirm storage commitment, holds only its own deliveries, not every other destination's. Each is
    // claimed under this node's lease, and a destination's lane is one lease at a time across the cluster.
    const busy = new Set<string>();
    const lanes = new Set<Promise<void>>();
    const fill = (): void => {
      while (this.running) {
        const delivery = pipelineStore.claimDelivery(this.now(), this.node.leaseMs, [...busy]);
        if (delivery === undefined) return;
        busy.add(delivery.destination);
        const lane: Promise<void> = this.leasedWork({ deliveryId: delivery.id }, () =>
          this.deliverOne(delivery),
        ).finally(() => {
          busy.delete(delivery.destination);
          lanes.delete(lane);
        });
        lanes.add(lane);
      }
    };
    fill();
    while (lanes.size > 0) {
      await Promise.race(lanes);
      fill();
    }
  }

  private async deliverOne(delivery: Delivery): Promise<void> {
    const { pipelineStore, logger } = this.options;
    const target = this.withDeadline(this.targets.get(delivery.destination));
    const ids = {
      jobId: delivery.jobId,
      studyInstanceUid: delivery.studyInstanceUid,
      revision: delivery.revision,
      destination: delivery.destination,
    };
    let outcome: DeliveryOutcome;
    const started = this.now();
    if (target === undefined) {
      // Not live (removed, or named by a rule of a reload that could not add it): wait for it rather than park,
      // so the delivery moves as soon as the destination exists again, after a reload or a restart.
      outcome = {
        kind: 'retry',
        cause: 'destination-not-configured',
        reason: `destination '${delivery.destination}' is not configured; the delivery waits until it is (add it to destinations.${delivery.kind} and reload)`,
      };
    } else {
      const payload = readOrError(() => storedPayload(delivery));
      if (payload instanceof GatewayError) {
        // Sending it again would read the same damaged row: parked for an admin, the other deliveries go on.
        outcome = { kind: 'parked', cause: 'stored-json-invalid', reason: payload.message };
      } else {
        try {
          outcome = await target.deliver(payload);
        } catch (error) {
          outcome = { kind: 'retry', cause: 'delivery-threw', reason: describeError(error) };
        }
      }
    }
    const now = this.now();
    if (outcome.kind === 'delivered') {
      pipelineStore.recordDelivery(delivery.id, { kind: 'delivered' }, now);
      this.watch.settled(delivery.id);
      this.options.timings?.observe(delivery.kind, now - started);
      logger.info(`${delivery.kind === 'pacs' ? 'objects stored in PACS' : 'result reported to RIS'}`, {
        event: delivery.kind === 'pacs' ? 'EXPORT-6001' : 'EXPORT-6002',
        ...ids,
        attempts: delivery.attempts + 1,
        ms: now - started,
      });
      return;
    }
    // The class decides how long to keep trying (FAILURE_CLASSES in retry-policy.ts): transient causes for as
    // long as it takes by default, permanent refusals park at once, unknown ones up to delivery.maxAttempts.
    const failure = failureClassOf(outcome.cause, outcome.kind);
    // Counted from the latest release by an admin: a released delivery gets the whole retry budget again.
    const attempt = delivery.attempts - delivery.attemptsAtRelease + 1;
    // The store keeps `cause: sentence`; the sentence holds no peer free text (destinations keep that at debug).
    const stored = `${outcome.cause}: ${outcome.reason}`;
    const next = nextAttemptAt(attempt, new Date(now), this.policy, this.random, failure);
    if (next.kind === 'park') {
      const why = failure === 'permanent' && attempt <= 1 ? stored : `${stored}; ${next.reason}`;
      pipelineStore.recordDelivery(delivery.id, { kind: 'parked', reason: why }, now);
      this.watch.settled(delivery.id);
      logger.error('delivery parked for an admin', {
        event: 'EXPORT-6004',
        ...ids,
        cause: outcome.cause,
        failure,
        attempt,
        why,
      });
      return;
    }
    // Cut off by the shutdown deadline: not the destination's fault, so due again at once after restart.
    const cutOff = outcome.cause === 'stopped' && this.shutdown.signal.aborted;
    const delayMs = cutOff
      ? 0
      : outcome.cause === 'destination-not-configured'
        ? Math.min(next.delayMs, DESTINATION_WAIT_MAX_MS)
        : next.delayMs;
    pipelineStore.recordDelivery(delivery.id, { kind: 'retry', reason: stored, nextAttemptAt: now + delayMs }, now);
    this.watch.failed(delivery.id, delivery.destination, outcome.cause, now);
    logger.warn('delivery failed; will retry', {
      event: 'EXPORT-6003',
      ...ids,
      cause: outcome.cause,
      failure,
      why: outcome.reason,
      retryInMs: delayMs,
      attempt,
    });
    const alertAfterMs = this.options.config.delivery.alertAfterMinutes * 60_000;
    if (this.watch.crossed(delivery.destination, now, alertAfterMs)) {
      logger.error(
        'deliveries to a destination have been failing longer than delivery.alertAfterMinutes; they keep retrying',
        {
          event: 'EXPORT-6005',
          destination: delivery.destination,
          cause: outcome.cause,
          alertAfterMinutes: this.options.config.delivery.alertAfterMinutes,
        },
      );
    }
  }
}

/** A stored column read, or the STORED_JSON_INVALID error it threw (to fail that job, image or delivery alone). */
function readOrError<T>(read: () => T): T | GatewayError {
  try {
    return read();
  } catch (error) {
    if (error instanceof GatewayError) return error;
    throw error;
  }
}

function roundMs(ms: Record<string, number | undefined>): Record<string, number> {
  return Object.fromEntries(Object.entries(ms).flatMap(([k, v]) => (v === undefined ? [] : [[k, Math.round(v)]])));
}
