import { existsSync, readFileSync } from 'node:fs';
import type { AuditRecord, AuditRowOut, AuditTrail } from '../store/audit-trail.js';
import type { GatewayConfig } from '../config/schema.js';
import { describeError } from '../errors.js';
import { probeDestination, type ProbedDestination, type ProbeResult } from '../export/destination-probe.js';
import type { Logger } from '../logging/logger.js';
import { storedAction, storedAttributes, storedPayload, storedResult } from '../pipeline/stored-columns.js';
import {
  StoreRefusal,
  type AttemptRowOut,
  type ConsoleQueries,
  type DeliveryRowOut,
  type JobImageRowOut,
  type JobRowOut,
  type StorePage,
  type StoreActor,
  type StudyRowOut,
  type StudyRowsOut,
} from '../store/console-queries.js';
import type { DeliveryKind } from '../store/pipeline-store.js';
import type { NodeRegistry } from '../store/nodes.js';
import {
  ConsoleRefusal,
  type Actor,
  type AuditEntry,
  type AuditFilter,
  type ConsoleBackend,
  type ConsoleHealth,
  type Dashboard,
  type DeliveryFilter,
  type DeliveryListItem,
  type DestinationHealth,
  type DryRun,
  type EchoResult,
  type JobFilter,
  type JobImageStory,
  type JobListItem,
  type JobStory,
  type NodeDrainResult,
  type Page,
  type PageRequest,
  type RulesValidation,
  type RunningConfig,
  type StudyFilter,
  type StudyListItem,
  type StudyStory,
} from './console-types.js';
import type { Health, ModelStatus, ReloadRecord } from './health.js';
import { overlayPng } from './overlay-png.js';
import { applyRules, dryRunRules, validateRules } from './rules-editor.js';

/** Config sections a reload does not apply (gateway.ts applyReload): changing them needs a restart. */
export const RESTART_NEEDED_KEYS = ['dicom', 'storage', 'models', 'inference', 'admin', 'logging', 'audit'] as const;

/** What the service needs of the audit trail (store/audit-trail.ts). */
export type AuditLog = Pick<AuditTrail, 'record' | 'list'>;
export type { AuditRecord, AuditRowOut as AuditRow };

export interface ConsoleServiceOptions {
  queries: ConsoleQueries;
  audit: AuditLog;
  /** The running configuration (changes with each applied reload). */
  config: () => GatewayConfig;
  /** The config file the daemon was started with; undefined on the embedded default. */
  configPath: string | undefined;
  /** Reads the config file as the daemon does (load-config.ts loadConfig, relative paths resolved). */
  loadConfig: (configPath: string) => GatewayConfig;
  /** /healthz as built now (health.ts buildHealth over the gateway's sources). */
  health: () => Health;
  models: () => ModelStatus[];
  freeDiskBytes: () => number;
  /** pipeline.wake(): work became due (a release, a reprocess). */
  wake: () => void;
  /** The gateway's reload; resolves with the outcome it recorded. */
  reload: (next: GatewayConfig, trigger: string) => Promise<ReloadRecord>;
  lastReload: () => ReloadRecord | undefined;
  probe?: (destination: ProbedDestination, callingAeTitle: string) => Promise<ProbeResult>;
  /** The cluster's nodes in the store (drain); without it every drain is a 404. */
  nodes?: Pick<NodeRegistry, 'setDraining' | 'leasesHeld'>;
  now?: () => number;
  version: string;
  startedAt: number;
  logger: Logger;
}

/**
 * The operations console's service: what the HTTP side (admin-server.ts) shows and does, over the job store's
 * console queries, the running configuration and the gateway. Stored JSON columns are read through
 * pipeline/stored-columns.ts; a damaged row shows as an error text where it belongs, never as a failed page.
 * The store records the audit entry of its actions (release, discard, reprocess) in their transaction; the
 * service records those it does itself (echo, rules apply) and the HTTP side's (login...).
 */
export class ConsoleService implements ConsoleBackend {
  private readonly now: () => number;
  /** Job id -> study, learnt from the study pages built (the overlay link comes from one). */
  /** Rule applies run one after the other: each reads the file the previous one wrote. */
  private applying: Promise<unknown> = Promise.resolve();

  constructor(private readonly o: ConsoleServiceOptions) {
    this.now = o.now ?? Date.now;
  }

  dashboard(): Dashboard {
    const { queries } = this.o;
    const now = this.now();
    const hour = queries.throughput(now - 3600_000);
    const day = queries.throughput(now - 24 * 3600_000);
    const count = (state: 'ready' | 'processing') => queries.jobs({ state, offset: 0, limit: 1 }).total;
    const deliveries = (state: 'pending' | 'parked') => queries.deliveries({ state, offset: 0, limit: 1 }).total;
    const health = this.o.health();
    return {
      throughput: {
        receivedLastHour: hour.studiesReceived,
        receivedLast24h: day.studiesReceived,
        finishedLastHour: hour.jobsFinished,
        finishedLast24h: day.jobsFinished,
      },
      queue: { jobs: count('ready') + count('processing'), deliveries: deliveries('pending') },
      parked: deliveries('parked'),
      models: this.o.models().map((m) => ({
        name: m.name,
        backend: m.backend ?? null,
        loaded: m.loaded,
        workers: m.workers,
      })),
      disk: { freeBytes: this.o.freeDiskBytes(), minFreeBytes: this.o.config().storage.minFreeDiskMB * 1048576 },
      status: health.status,
      problems: health.problems,
      version: this.o.version,
      startedAt: this.o.startedAt,
    };
  }

  health(): ConsoleHealth {
    const health = this.o.health();
    return { ...health, destinations: this.destinationHealth() };
  }

  /** Configured destinations first (in config order), then any the store still has deliveries for. */
  private destinationHealth(): DestinationHealth[] {
    const activity = new Map(this.o.queries.destinationActivity().map((a) => [a.destination, a]));
    const configured = this.configuredDestinations();
    const rows: DestinationHealth[] = configured.map((d) => {
      const a = activity.get(d.name);
      activity.delete(d.name);
      return {
        name: d.name,
        kind: d.kind,
        transport: d.type,
        lastSuccessAt: a?.lastSuccessAt ?? null,
        lastFailureAt: a?.lastFailureAt ?? null,
        lastFailure: a?.lastFailure ?? null,
        pending: a?.pending ?? 0,
        parked: a?.parked ?? 0,
      };
    });
    for (const a of activity.values()) {
      rows.push({
        name: a.destination,
        kind: a.kind,
        transport: 'not configured',
        lastSuccessAt: a.lastSuccessAt,
        lastFailureAt: a.lastFailureAt,
        lastFailure: a.lastFailure,
        pending: a.pending,
        parked: a.parked,
      });
    }
    return rows;
  }

  private configuredDestinations(): ProbedDestination[] {
    const { destinations } = this.o.config();
    return [
      ...destinations.pacs.map((d) => ({ kind: 'pacs' as const, ...d })),
      ...destinations.ris.map((d) => ({ kind: 'ris' as const, ...d })),
    ];
  }

  studies(filter: StudyFilter): Page<StudyListItem> {
    checkPage(filter);
    return mapPage(this.o.queries.studies(filter), studyItem);
  }

  study(studyInstanceUid: string): StudyStory {
    const rows = this.o.queries.studyRows(studyInstanceUid);
    if (rows === undefined)
      throw new ConsoleRefusal(404, 'STUDY_NOT_FOUND', `no study ${studyInstanceUid} in the job store`);
    return {
      study: rows.study,
      images: rows.instances.map((i) => {
        let attributes: { viewPosition?: string; modality?: string } = {};
        try {
          attributes = storedAttributes(i);
        } catch {
          // A damaged attributes column: the image is still listed, without them.
        }
        return {
          sopInstanceUid: i.sopInstanceUid,
          sopClassUid: i.sopClassUid,
          seriesInstanceUid: i.seriesInstanceUid,
          callingAe: i.callingAe,
          calledAe: i.calledAe,
          sourceIp: i.sourceIp,
          receivedAt: i.receivedAt,
          viewPosition: attributes.viewPosition ?? null,
          modality: attributes.modality ?? null,
        };
      }),
      jobs: rows.jobs.map((job) => jobStory(job)),
    };
  }

  async overlayPng(jobId: number, sopInstanceUid: string): Promise<Buffer> {
    const study = this.o.queries.studyOfJob(jobId);
    const job = study === undefined ? undefined : this.o.queries.studyRows(study)?.jobs.find((j) => j.id === jobId);
    if (job === undefined) throw new ConsoleRefusal(404, 'JOB_NOT_FOUND', `no job ${jobId} in the job store`);
    const image = job.images.find((i) => i.sopInstanceUid === sopInstanceUid);
    if (image === undefined)
      throw new ConsoleRefusal(404, 'IMAGE_NOT_FOUND', `job ${jobId} has no image ${sopInstanceUid}`);
    if (image.state !== 'written' || image.result === null)
      throw new ConsoleRefusal(
        404,
        'OVERLAY_NONE',
        `image ${sopInstanceUid} of job ${jobId} has no overlay (${image.state})`,
      );
    let sc: string | undefined;
    try {
      sc = storedResult({ jobId, sopInstanceUid, result: image.result }).outputs.find((o) => o.kind === 'sc')?.path;
    } catch (error) {
      throw new ConsoleRefusal(409, 'STORED_JSON_INVALID', describeError(error));
    }
    if (sc === undefined)
      throw new ConsoleRefusal(
        404,
        'OVERLAY_NONE',
        `the rule of job ${jobId} wrote no heatmap picture (outputs without sc)`,
      );
    return overlayPng(sc);
  }

  jobs(filter: JobFilter): Page<JobListItem> {
    checkPage(filter);
    return mapPage(this.o.queries.jobs(filter), jobItem);
  }

  deliveries(filter: DeliveryFilter): Page<DeliveryListItem> {
    checkPage(filter);
    return mapPage(this.o.queries.deliveries(filter), deliveryItem);
  }

  releaseDelivery(id: number, actor: Actor): DeliveryListItem[] {
    requireAdmin(actor);
    return this.auditRefusal(actor, 'delivery.release', `delivery ${id}`, () => this.release(id, actor));
  }

  private release(id: number, actor: Actor): DeliveryListItem[] {
    const released = refused(() => this.o.queries.releaseDelivery(id, storeActor(actor), this.now()));
    this.o.logger.info('parked deliveries released', {
      event: 'ADMIN-7201',
      user: actor.user,
      deliveryIds: released.map((d) => d.id),
    });
    this.o.wake();
    return released.map(deliveryItem);
  }

  releaseDestination(destination: string, actor: Actor): DeliveryListItem[] {
    requireAdmin(actor);
    return this.auditRefusal(actor, 'delivery.release-destination', `destination ${destination}`, () =>
      this.releaseAllFor(destination, actor),
    );
  }

  private releaseAllFor(destination: string, actor: Actor): DeliveryListItem[] {
    const known =
      this.configuredDestinations().some((d) => d.name === destination) ||
      this.o.queries.destinationActivity().some((a) => a.destination === destination);
    if (!known) {
      throw new ConsoleRefusal(
        404,
        'DESTINATION_NOT_FOUND',
        `no destination '${destination}': it is neither configured nor named by any delivery in the job store`,
      );
    }
    const released = refused(() => this.o.queries.releaseDestination(destination, storeActor(actor), this.now()));
    this.o.logger.info('parked deliveries released', {
      event: 'ADMIN-7201',
      user: actor.user,
      destination,
      deliveryIds: released.map((d) => d.id),
    });
    if (released.length > 0) this.o.wake();
    return released.map(deliveryItem);
  }

  drainNode(name: string, draining: boolean, actor: Actor): NodeDrainResult {
    requireAdmin(actor);
    const action = draining ? 'node.drain' : 'node.undrain';
    return this.auditRefusal(actor, action, name, () => {
      const nodes = this.o.nodes;
      if (nodes === undefined || !nodes.setDraining(name, draining))
        throw new ConsoleRefusal(404, 'NODE_UNKNOWN', `no node named '${name}' has registered in the job store`);
      this.recordAs(actor, action, name, { outcome: 'success', after: { draining } });
      const holds = nodes.leasesHeld(this.now()).get(name) ?? { jobs: 0, deliveries: 0 };
      this.o.logger.info(draining ? 'node drained from the console' : 'node claims work again (console)', {
        event: 'ADMIN-7207',
        user: actor.user,
        node: name,
        draining,
        ...holds,
      });
      return { node: name, draining, holds };
    });
  }

  discardDelivery(id: number, reason: string, actor: Actor): DeliveryListItem {
    requireAdmin(actor);
    return this.auditRefusal(actor, 'delivery.discard', `delivery ${id}`, () => this.discard(id, reason, actor));
  }

  private discard(id: number, reason: string, actor: Actor): DeliveryListItem {
    const why = typeof reason === 'string' ? reason.trim() : '';
    if (why.length === 0 || why.length > 500) {
      throw new ConsoleRefusal(
        400,
        'REASON_REQUIRED',
        'give the reason for discarding (1 to 500 characters): it is kept in the audit trail',
      );
    }
    const discarded = refused(() => this.o.queries.discardDelivery(id, why, storeActor(actor), this.now()));
    this.o.logger.info('parked delivery discarded', { event: 'ADMIN-7202', user: actor.user, deliveryId: id });
    return deliveryItem(discarded);
  }

  reprocessStudy(studyInstanceUid: string, actor: Actor): { jobId: number; revision: number } {
    requireAdmin(actor);
    return this.auditRefusal(actor, 'study.reprocess', `study ${studyInstanceUid}`, () =>
      this.reprocess(studyInstanceUid, actor),
    );
  }

  /**
   * Runs an action whose success the store audits in its own transaction; a refusal (nothing changed) is audited
   * here as a failure with its code, so the trail shows attempts as well as changes.
   */
  private auditRefusal<T>(actor: Actor, action: string, target: string, run: () => T): T {
    try {
      return run();
    } catch (error) {
      if (error instanceof ConsoleRefusal)
        this.recordAs(actor, action, target, { outcome: 'failure', detail: `${error.code}: ${error.message}` });
      throw error;
    }
  }
  /** One admin action's audit entry, as `actor`. */
  private recordAs(
    actor: Actor,
    action: string,
    target: string,
    entry: Pick<AuditRecord, 'outcome'> & Partial<Pick<AuditRecord, 'after' | 'detail'>>,
  ): void {
    this.o.audit.record(
      { category: 'admin', action, user: actor.user, role: actor.role, address: actor.address, target, ...entry },
      this.now(),
    );
  }

  private reprocess(studyInstanceUid: string, actor: Actor): { jobId: number; revision: number } {
    const job = refused(() => this.o.queries.reprocessStudy(studyInstanceUid, storeActor(actor), this.now()));
    this.o.logger.info('study queued for reprocessing', {
      event: 'ADMIN-7203',
      user: actor.user,
      studyInstanceUid,
      jobId: job.jobId,
      revision: job.revision,
    });
    this.o.wake();
    return job;
  }

  async echoDestination(name: string, actor: Actor): Promise<EchoResult> {
    requireAdmin(actor);
    const destination = this.configuredDestinations().find((d) => d.name === name);
    if (destination === undefined) {
      throw new ConsoleRefusal(404, 'DESTINATION_NOT_FOUND', `no destination '${name}' is configured`);
    }
    const probe = this.o.probe ?? probeDestination;
    const result = await probe(destination, this.o.config().dicom.aeTitle);
    this.o.audit.record(
      {
        category: 'admin',
        action: 'destination.echo',
        user: actor.user,
        role: actor.role,
        address: actor.address,
        target: `destination ${name}`,
        outcome: result.ok ? 'success' : 'failure',
        detail: result.detail,
      },
      this.now(),
    );
    this.o.logger.info('destination echoed', {
      event: 'ADMIN-7204',
      user: actor.user,
      destination: name,
      ok: result.ok,
      ms: result.ms,
      detail: result.detail,
    });
    return result;
  }

  runningConfig(): RunningConfig {
    const config = this.o.config();
    const last = this.o.lastReload();
    return {
      source: this.o.configPath ?? 'embedded default',
      config: redact(config) as Record<string, unknown>,
      restartNeededKeys: [...RESTART_NEEDED_KEYS],
      pendingRestart: this.pendingRestart(config),
      lastReload: last === undefined ? null : { ...last },
    };
  }

  /** Restart-needed sections where the file on disk differs from what runs (an unreadable file: none known). */
  private pendingRestart(running: GatewayConfig): string[] {
    if (this.o.configPath === undefined) return [];
    let onDisk: GatewayConfig;
    try {
      onDisk = this.o.loadConfig(this.o.configPath);
    } catch {
      return [];
    }
    return RESTART_NEEDED_KEYS.filter((key) => JSON.stringify(onDisk[key]) !== JSON.stringify(running[key]));
  }

  rules(): unknown[] {
    return this.o.config().rules;
  }

  validateRules(candidate: unknown): RulesValidation {
    return validateRules(this.o.config(), candidate);
  }

  dryRunRules(candidate: unknown, last: number): DryRun {
    return dryRunRules(this.o.config(), this.o.queries, candidate, last);
  }

  applyRules(candidate: unknown, actor: Actor): Promise<{ backup: string; rules: number }> {
    const run = this.applying.then(() => this.applyNow(candidate, actor));
    this.applying = run.catch(() => undefined);
    return run;
  }

  private async applyNow(candidate: unknown, actor: Actor): Promise<{ backup: string; rules: number }> {
    const audit = (outcome: 'success' | 'failure', fields: Partial<AuditRecord>) =>
      this.o.audit.record(
        {
          category: 'admin',
          action: 'rules.apply',
          user: actor.user,
          role: actor.role,
          address: actor.address,
          target: `config ${this.o.configPath ?? 'embedded default'}`,
          outcome,
          ...fields,
        },
        this.now(),
      );
    try {
      requireAdmin(actor);
      const applied = await applyRules({
        configPath: this.o.configPath,
        running: this.o.config(),
        candidate,
        load: this.o.loadConfig,
        reload: (next) => this.o.reload(next, `console (${actor.user})`),
        now: this.now(),
      });
      audit('success', {
        before: applied.before,
        after: applied.after,
        detail: `previous file kept as ${applied.backup}`,
      });
      this.o.logger.info('rule set applied from the console', {
        event: 'ADMIN-7205',
        user: actor.user,
        rules: applied.rules,
        backup: applied.backup,
      });
      return { backup: applied.backup, rules: applied.rules };
    } catch (error) {
      if (!(error instanceof ConsoleRefusal)) throw error;
      if (error.status !== 403) audit('failure', { after: candidate, detail: error.message });
      this.o.logger.warn('rule set apply refused; nothing changed', {
        event: 'ADMIN-7206',
        user: actor.user,
        code: error.code,
        why: error.message,
      });
      throw error;
    }
  }

  audit(filter: AuditFilter): Page<AuditEntry> {
    checkPage(filter);
    return mapPage(this.o.audit.list(filter), (row) => ({
      ...row,
      before: parseJsonText(row.before),
      after: parseJsonText(row.after),
    }));
  }

  recordAudit(entry: Omit<AuditEntry, 'id' | 'at' | 'before' | 'after'> & { before?: unknown; after?: unknown }): void {
    this.o.audit.record(entry, this.now());
  }
}

function requireAdmin(actor: Actor): void {
  if (actor.role !== 'admin') {
    throw new ConsoleRefusal(
      403,
      'ROLE_FORBIDDEN',
      `user '${actor.user}' has the viewer role: actions need the admin role`,
    );
  }
}

function storeActor(actor: Actor): StoreActor {
  return { user: actor.user, role: actor.role, address: actor.address };
}

/** The store's refusal as the console's (same status and code): nothing changed. */
function refused<T>(action: () => T): T {
  try {
    return action();
  } catch (error) {
    if (error instanceof StoreRefusal) throw new ConsoleRefusal(error.status, error.code, error.message);
    throw error;
  }
}

function checkPage(page: PageRequest): void {
  if (!Number.isInteger(page.offset) || page.offset < 0) {
    throw new ConsoleRefusal(400, 'BAD_REQUEST', 'offset must be a whole number, 0 or more');
  }
  if (!Number.isInteger(page.limit) || page.limit < 1 || page.limit > 500) {
    throw new ConsoleRefusal(400, 'BAD_REQUEST', 'limit must be a whole number from 1 to 500');
  }
}

function mapPage<A, B>(page: StorePage<A>, map: (a: A) => B): Page<B> {
  return { items: page.items.map(map), total: page.total, offset: page.offset, limit: page.limit };
}

function parseJsonText(text: string | null): unknown {
  if (text === null) return null;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

/** Values of keys that name secrets (key passwords, shared secrets) are not shown. */
function redact(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(redact);
  if (typeof value !== 'object' || value === null) return value;
  return Object.fromEntries(
    Object.entries(value).map(([k, v]) => [k, /password|passphrase|secret|token/i.test(k) ? '(redacted)' : redact(v)]),
  );
}

function studyItem(row: StudyRowOut): StudyListItem {
  const { latestJob, ...study } = row;
  if (latestJob === null) return { ...study, latestJob: null };
  const { firstResult, ...job } = latestJob;
  let predicted: string | null = null;
  if (firstResult !== null) {
    try {
      predicted = storedResult({ jobId: job.id, sopInstanceUid: '(first written)', result: firstResult }).classification
        .predicted;
    } catch {
      predicted = null;
    }
  }
  return { ...study, latestJob: { ...job, predicted } };
}

function jobItem(row: JobRowOut): JobListItem {
  const { action: _action, ...item } = row;
  return item;
}

function deliveryItem(row: DeliveryRowOut): DeliveryListItem {
  const { payload: _payload, ...item } = row;
  return item;
}

type JobRows = StudyRowsOut['jobs'][number];

function jobStory(job: JobRows): JobStory {
  const problems: string[] = [];
  let routing: JobStory['routing'] = null;
  if (job.state === 'ignored') routing = { ignored: job.lastError ?? 'no rule processes its images' };
  else if (job.action !== null) {
    try {
      const a = storedAction({ jobId: job.id, action: job.action });
      routing = {
        rule: job.rule ?? '',
        model: a.model,
        outputs: a.outputs,
        pacs: a.pacs,
        ris: a.ris,
        priority: a.priority,
      };
    } catch (error) {
      problems.push(describeError(error));
    }
  }
  const hl7: JobStory['hl7'] = [];
  const deliveries = job.deliveries.map((d) => {
    const { payload: _payload, history, ...item } = d;
    if (d.kind === 'ris') hl7.push(hl7Of(d));
    return { ...item, history: history.map(attempt) };
  });
  return {
    id: job.id,
    revision: job.revision,
    state: job.state,
    createdAt: job.createdAt,
    finishedAt: job.finishedAt,
    // A damaged stored column is told here, in the job it belongs to.
    lastError: [job.lastError, ...problems].filter((p): p is string => p !== null).join('; ') || null,
    routing,
    images: job.images.map((image) => imageStory(job.id, image)),
    deliveries,
    hl7,
  };
}

function attempt(row: AttemptRowOut): JobStory['deliveries'][number]['history'][number] {
  return { ...row };
}

function imageStory(jobId: number, image: JobImageRowOut): JobImageStory {
  const base: JobImageStory = {
    sopInstanceUid: image.sopInstanceUid,
    state: image.state,
    reason: image.reason,
    classification: null,
    explanation: null,
    outputs: [],
    overlayAvailable: false,
  };
  if (image.state !== 'written' || image.result === null) return base;
  try {
    const r = storedResult({ jobId, sopInstanceUid: image.sopInstanceUid, result: image.result });
    const sc = r.outputs.find((o) => o.kind === 'sc');
    return {
      ...base,
      classification: {
        classes: r.classification.classes,
        probabilities: r.classification.probabilities,
        predicted: r.classification.predicted,
      },
      explanation: { targetClass: r.explanation.targetClass, composite: r.explanation.composite },
      outputs: r.outputs.map((o) => ({
        kind: o.kind,
        sopInstanceUid: o.sopInstanceUid,
        seriesInstanceUid: o.seriesInstanceUid,
      })),
      overlayAvailable: sc !== undefined && existsSync(sc.path),
    };
  } catch (error) {
    return { ...base, reason: describeError(error) };
  }
}

/** The HL7 text of a RIS delivery, from the .hl7 file its payload names (gone after retention: said so). */
function hl7Of(d: DeliveryRowOut & { kind: DeliveryKind }): JobStory['hl7'][number] {
  let payload;
  try {
    payload = storedPayload(d);
  } catch (error) {
    return { destination: d.destination, controlId: '', text: `(${describeError(error)})` };
  }
  if (payload.kind !== 'ris') return { destination: d.destination, controlId: '', text: '(not an HL7 delivery)' };
  let text: string;
  try {
    text = readFileSync(payload.file, 'utf8');
  } catch (error) {
    text =
      (error as NodeJS.ErrnoException).code === 'ENOENT'
        ? `(the HL7 message file ${payload.file} is no longer in the spool: deleted by retention after maintenance.retentionDays)`
        : `(the HL7 message file ${payload.file} cannot be read: ${describeError(error)})`;
  }
  return { destination: d.destination, controlId: payload.controlId, text };
}
