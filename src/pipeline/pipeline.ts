import path from 'node:path';
import type { GatewayConfig } from '../config/schema.js';
import type { KeyAttributes } from '../dicom/dataset-walker.js';
import { describeError } from '../errors.js';
import { checkEligibility, type EligibilityRules } from '../inference/eligibility.js';
import { WorkerCrashedError, type InferencePool } from '../inference/inference-pool.js';
import type { ModelManifest } from '../inference/model-manifest.js';
import type { Logger } from '../logging/logger.js';
import { DEFAULT_USAGE_NOTICE } from '../reporting/report-inputs.js';
import { readDatasetAttributes } from '../routing/dataset-attributes.js';
import { routeInstance } from '../routing/rule-matcher.js';
import type { ProcessAction } from '../routing/rule-schema.js';
import type { JobStore } from '../store/job-store.js';
import type { ActiveJob, JobImage, PipelineStore } from '../store/pipeline-store.js';
import { isOutOfSpace } from '../store/out-of-resources.js';
import { writeFileAtomic } from '../export/atomic-file.js';
import type { DeliveryPayload, DeliveryTarget } from './delivery-target.js';
import { NO_SPACE, type ImageWorkResult } from './image-work.js';
import { nextAttemptAt, type RetryPolicy } from './retry-policy.js';
import type { StageTimings } from './stage-timings.js';
import { buildStudyReport, studyLevelResult } from './study-report.js';

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
  return { initialDelayMs: d.initialBackoffSeconds * 1000, multiplier: 2, maxDelayMs: d.maxBackoffSeconds * 1000, maxAttempts: d.maxAttempts, jitter: 0.2 };
}

export class Pipeline {
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

  constructor(private readonly options: PipelineOptions) {
    this.now = options.now ?? Date.now;
    this.spaceRetry = options.spaceRetry ?? { initialMs: 2000, maxMs: 60_000 };
    this.random = options.random ?? Math.random;
    this.policy = retryPolicyOf(options.config);
  }

  /**
   * A reloaded configuration: rules, eligibility, explanation target and retry policy take effect for
   * the next job; models and destinations are fixed at start (the caller says so in the log).
   */
  updateConfig(config: GatewayConfig): void {
    this.options.config = config;
    this.policy = retryPolicyOf(config);
    this.wake();
  }

  start(): void {
    this.running = true;
    this.wake();
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

  async stop(): Promise<void> {
    this.running = false;
    if (this.deliveryTimer) clearTimeout(this.deliveryTimer);
    await Promise.allSettled([this.processing, this.delivering]);
  }

  private async processAll(): Promise<void> {
    const { pipelineStore, logger } = this.options;
    try {
      const lanes = Math.max(1, [...this.options.models.values()].reduce((n, m) => n + m.pool.size, 0));
      const taken = new Set<number>();
      // Each lane asks for its next job only when it is free, routing whatever became ready meanwhile:
      // an urgent study that arrives during a backlog goes next, not after the backlog.
      const next = (): ActiveJob | undefined => {
        for (const job of pipelineStore.jobsToRoute()) this.route(job.jobId, job.studyInstanceUid, job.revision);
        const job = pipelineStore.activeJobs().find((j) => !taken.has(j.jobId));
        if (job) taken.add(job.jobId);
        return job;
      };
      await Promise.all(
        Array.from({ length: lanes }, async () => {
          for (let job = next(); job && this.running; job = next()) await this.processJob(job);
        }),
      );
    } catch (error) {
      logger.error('pipeline pass failed; it runs again on the next event', { error: describeError(error) });
    }
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
      logger.info('job ignored by routing', { jobId, studyInstanceUid, revision, why: reasons.join('; ') });
      return;
    }
    pipelineStore.routeJob(jobId, { rule: chosen.rule, action: JSON.stringify(chosen.action), priority: chosen.action.priority, images }, now);
    logger.info('job routed', { jobId, studyInstanceUid, revision, rule: chosen.rule, priority: chosen.action.priority, images: images.length });
  }

  private async processJob(job: ActiveJob): Promise<void> {
    const { config, pipelineStore, store, logger } = this.options;
    // Waiting (for disk space): a timer wakes the pipeline when it is due (set here too, for a job that
    // was already waiting when the daemon started).
    if (job.nextAttemptAt !== null && job.nextAttemptAt > this.now()) return this.wakeAt(job.nextAttemptAt);
    const action = JSON.parse(job.action) as ProcessAction;
    const model = this.options.models.get(action.model);
    const ids = { jobId: job.jobId, studyInstanceUid: job.studyInstanceUid, revision: job.revision };
    if (model === undefined) {
      // The model failed to load at start (logged then); the job waits for a restart with a working model.
      logger.warn('job waits: its model is not loaded', { ...ids, model: action.model });
      return;
    }
    pipelineStore.beginAttempt(job.jobId, this.now());
    const rules: EligibilityRules = { ...config.inference.eligibility, ...(action.eligibility ?? {}) };
    const attributesOf = new Map(pipelineStore.studyInstances(job.studyInstanceUid).map((i) => [i.sopInstanceUid, JSON.parse(i.attributes) as KeyAttributes]));
    const pending = pipelineStore.jobImages(job.jobId).filter((i) => i.state === 'pending');
    const toProcess: JobImage[] = [];
    for (const image of pending) {
      const verdict = checkEligibility(attributesOf.get(image.sopInstanceUid) ?? {}, rules);
      if (verdict.eligible) toProcess.push(image);
      else pipelineStore.recordImage(job.jobId, image.sopInstanceUid, { state: 'skipped', reason: verdict.reason }, this.now());
    }
    const outDir = path.join(this.options.outputsDir, job.studyInstanceUid, `r${job.revision}`);
    const createdAt = new Date(store.jobCreatedAt(job.jobId) ?? this.now()).toISOString();
    // An image a worker already died on goes alone: if it is the poison, it takes no other image down again.
    const suspects = toProcess.filter((i) => i.crashes > 0);
    const rest = toProcess.filter((i) => i.crashes === 0);
    const batches: JobImage[][] = suspects.map((i) => [i]);
    for (let i = 0; i < rest.length; i += config.inference.maxBatch) batches.push(rest.slice(i, i + config.inference.maxBatch));
    for (let batch = batches.shift(); batch !== undefined; batch = batches.shift()) {
      let results: ImageWorkResult[];
      try {
        results = await model.pool.process({
          images: batch.map((i) => ({ sopInstanceUid: i.sopInstanceUid, path: i.path })),
          outputs: action.outputs,
          revision: job.revision,
          createdAt,
          outDir,
          target: config.explain.target,
          usageNotice: DEFAULT_USAGE_NOTICE,
        });
      } catch (error) {
        if (error instanceof WorkerCrashedError) {
          batches.unshift(...this.afterCrash(job, batch, error).map((i) => [i]));
          continue;
        }
        // A stopped pool: the images stay pending and the job is retried on the next pass.
        logger.error('image processing failed; the job stays pending', { ...ids, error: describeError(error) });
        return;
      }
      let noSpace: string | undefined;
      for (const r of results) {
        if (r.kind === 'written') {
          pipelineStore.recordImage(job.jobId, r.sopInstanceUid, { state: 'written', result: JSON.stringify(r) }, this.now());
          this.options.timings?.observeAll(r.stageMs);
          logger.info('image classified and explained', { ...ids, sopInstanceUid: r.sopInstanceUid, predicted: r.classification.predicted, outputs: r.outputs.length, stageMs: roundMs(r.stageMs) });
        } else if (r.code === NO_SPACE) {
          // Not the image's fault: it stays pending and the job is tried again once there is room.
          noSpace ??= r.reason;
        } else {
          pipelineStore.recordImage(job.jobId, r.sopInstanceUid, { state: 'failed', reason: `${r.code}: ${r.reason}` }, this.now());
          logger.warn('image failed', { ...ids, sopInstanceUid: r.sopInstanceUid, code: r.code, why: r.reason });
        }
      }
      if (noSpace !== undefined) return this.waitForSpace(job, noSpace);
    }
    await this.finishJob(job, action, model.manifest, createdAt);
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
    const counts = pipelineStore.recordCrash(job.jobId, batch.map((i) => i.sopInstanceUid), this.now());
    const again: JobImage[] = [];
    for (const image of batch) {
      const crashes = counts.get(image.sopInstanceUid) ?? max;
      if (crashes >= max) {
        const reason = `WORKER_CRASHED: the inference worker crashed ${crashes} times on this image (last: ${error.detail})`;
        pipelineStore.recordImage(job.jobId, image.sopInstanceUid, { state: 'failed', reason }, this.now());
        logger.error('image failed: the inference worker crashed on it every time (a poison image)', { ...ids, sopInstanceUid: image.sopInstanceUid, crashes });
      } else {
        again.push({ ...image, crashes });
      }
    }
    if (again.length > 0) {
      logger.warn('an inference worker crashed while holding these images; they are tried again one by one', {
        ...ids,
        sopInstanceUids: again.map((i) => i.sopInstanceUid),
        maxCrashesPerImage: max,
      });
    }
    return again;
  }

  /** No room for the job's outputs: it stays processing and is tried again later, with a capped backoff. */
  private waitForSpace(job: ActiveJob, reason: string): void {
    const waits = this.spaceWaits.get(job.jobId) ?? 0;
    this.spaceWaits.set(job.jobId, waits + 1);
    const { initialMs, maxMs } = this.spaceRetry;
    const delayMs = Math.min(maxMs, initialMs * 2 ** waits);
    const now = this.now();
    this.options.pipelineStore.deferJob(job.jobId, now + delayMs, `waiting for disk space: ${reason}`, now);
    this.options.logger.warn('no disk space for the job\'s outputs: it waits and is tried again', {
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
    this.spaceTimer = setTimeout(() => {
      this.spaceTimer = undefined;
      this.wake();
    }, Math.max(0, due - this.now()) + 1);
    // Never what keeps the process alive: stop() ends the pipeline without waiting for it.
    this.spaceTimer.unref();
  }

  private async finishJob(job: ActiveJob, action: ProcessAction, manifest: ModelManifest, createdAt: string): Promise<void> {
    const { pipelineStore, config, logger } = this.options;
    const images = pipelineStore.jobImages(job.jobId);
    const written = images.flatMap((i) => (i.state === 'written' && i.result ? [JSON.parse(i.result) as Extract<ImageWorkResult, { kind: 'written' }>] : []));
    const ids = { jobId: job.jobId, studyInstanceUid: job.studyInstanceUid, revision: job.revision };
    const now = this.now();
    if (written.length === 0) {
      const failed = images.some((i) => i.state === 'failed');
      const reason = images.map((i) => `${i.sopInstanceUid}: ${i.reason ?? i.state}`).join('; ');
      pipelineStore.finishProcessing(job.jobId, { state: failed ? 'failed' : 'ignored', reason: failed ? reason : `no eligible image (${reason})` }, now);
      this.spaceWaits.delete(job.jobId);
      logger.info(failed ? 'job failed: no image could be processed' : 'job ignored: no eligible image', { ...ids, why: reason });
      return;
    }
    const deliveries: Array<{ kind: 'pacs' | 'ris'; destination: string; payload: string }> = [];
    const files = written.flatMap((w) => w.outputs.map((o) => o.path));
    for (const name of action.pacs) deliveries.push({ kind: 'pacs', destination: name, payload: JSON.stringify({ kind: 'pacs', files } satisfies DeliveryPayload) });
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
        manifest,
        ris,
        createdAt: new Date(createdAt),
      });
      const dir = path.join(this.options.outputsDir, job.studyInstanceUid, `r${job.revision}`);
      const file = path.join(dir, `${report.controlId}.hl7`);
      try {
        await writeFileAtomic(dir, `${report.controlId}.hl7`, Buffer.from(report.message, 'utf8'));
      } catch (error) {
        if (isOutOfSpace(error)) return this.waitForSpace(job, `no disk space for the HL7 report: ${describeError(error)}`);
        throw error;
      }
      deliveries.push({ kind: 'ris', destination: name, payload: JSON.stringify({ kind: 'ris', file, controlId: report.controlId } satisfies DeliveryPayload) });
    }
    // A done job whose images partly failed says why (jobs --json lastError), not null.
    const failed = images.filter((i) => i.state === 'failed');
    const imageProblems = failed.length === 0 ? null : `${failed.length} of ${images.length} image(s) failed: ${failed.map((i) => `${i.sopInstanceUid}: ${i.reason ?? 'failed'}`).join('; ')}`;
    pipelineStore.finishProcessing(job.jobId, { deliveries, imageProblems }, now);
    this.spaceWaits.delete(job.jobId);
    logger.info('job written: deliveries queued', { ...ids, deliveries: deliveries.length, images: written.length, imagesFailed: failed.length });
    this.scheduleDeliveries(0);
  }

  private scheduleDeliveries(delayMs: number): void {
    if (!this.running) return;
    if (this.deliveryTimer) clearTimeout(this.deliveryTimer);
    this.deliveryTimer = setTimeout(() => {
      this.deliveryTimer = undefined;
      if (this.delivering) return this.scheduleDeliveries(100);
      this.delivering = this.deliverDue().finally(() => {
        this.delivering = undefined;
        const next = this.options.pipelineStore.nextDeliveryAt();
        if (next !== undefined) this.scheduleDeliveries(Math.max(50, next - this.now()));
      });
    }, delayMs);
  }

  private async deliverDue(): Promise<void> {
    const { pipelineStore, logger, targets } = this.options;
    // One at a time, asking again after each: an urgent delivery never waits behind a batch of normal ones.
    for (let due = pipelineStore.dueDeliveries(this.now(), 1); due.length > 0 && this.running; due = pipelineStore.dueDeliveries(this.now(), 1)) {
      for (const delivery of due) {
        const target = targets.get(delivery.destination);
        const ids = { jobId: delivery.jobId, studyInstanceUid: delivery.studyInstanceUid, revision: delivery.revision, destination: delivery.destination };
        let outcome;
        const started = this.now();
        try {
          outcome = target ? await target.deliver(JSON.parse(delivery.payload) as DeliveryPayload) : { kind: 'parked' as const, reason: `destination '${delivery.destination}' is not configured any more` };
        } catch (error) {
          outcome = { kind: 'retry' as const, reason: describeError(error) };
        }
        const now = this.now();
        if (outcome.kind === 'delivered') {
          pipelineStore.recordDelivery(delivery.id, { kind: 'delivered' }, now);
          this.options.timings?.observe(delivery.kind, now - started);
          logger.info(`${delivery.kind === 'pacs' ? 'objects stored in PACS' : 'result reported to RIS'}`, { ...ids, attempts: delivery.attempts + 1, ms: now - started });
        } else if (outcome.kind === 'parked') {
          pipelineStore.recordDelivery(delivery.id, { kind: 'parked', reason: outcome.reason }, now);
          logger.error('delivery parked for an admin', { ...ids, why: outcome.reason });
        } else {
          const next = nextAttemptAt(delivery.attempts + 1, new Date(now), this.policy, this.random);
          if (next.kind === 'park') {
            pipelineStore.recordDelivery(delivery.id, { kind: 'parked', reason: `${outcome.reason}; ${next.reason}` }, now);
            logger.error('delivery parked for an admin', { ...ids, why: `${outcome.reason}; ${next.reason}` });
          } else {
            pipelineStore.recordDelivery(delivery.id, { kind: 'retry', reason: outcome.reason, nextAttemptAt: next.at.getTime() }, now);
            logger.warn('delivery failed; will retry', { ...ids, why: outcome.reason, retryInMs: next.delayMs, attempt: delivery.attempts + 1 });
          }
        }
      }
    }
  }
}

function roundMs(ms: Record<string, number | undefined>): Record<string, number> {
  return Object.fromEntries(Object.entries(ms).flatMap(([k, v]) => (v === undefined ? [] : [[k, Math.round(v)]])));
}
