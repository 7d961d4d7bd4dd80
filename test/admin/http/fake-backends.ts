// In-memory ConsoleBackend and AuthBackend for the HTTP side's tests. They keep the contract of console-types.ts:
// refusals are ConsoleRefusal with the documented status, and a refused call changes nothing; every action is
// audited. The real ones (console-service.ts, auth-service.ts) are tested against the job store by their owners.

import { randomBytes } from 'node:crypto';
import {
  ConsoleRefusal,
  type Actor,
  type AuditEntry,
  type AuditFilter,
  type AuthBackend,
  type ConsoleBackend,
  type ConsoleHealth,
  type Dashboard,
  type DeliveryAttempt,
  type DeliveryFilter,
  type DeliveryListItem,
  type DestinationHealth,
  type DryRun,
  type EchoResult,
  type JobFilter,
  type JobListItem,
  type JobStory,
  type NodeDrainResult,
  type Page,
  type Role,
  type RoutingOutcome,
  type RulesValidation,
  type RunningConfig,
  type SessionInfo,
  type StudyFilter,
  type StudyListItem,
  type StudyStory,
} from '../../../src/admin/console-types.js';
import type { DeliveryState } from '../../../src/store/pipeline-store.js';

/** A 1x1 grey PNG: what overlayPng answers for an image whose overlay is available. */
export const TINY_PNG = Buffer.from(
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAAAAAA6fptVAAAACklEQVR4nGNgAAAAAgABSK+kcQAAAABJRU5ErkJggg==',
  'base64',
);

export const T0 = Date.UTC(2026, 11, 1, 8, 0, 0);

function page<T>(items: T[], filter: { offset: number; limit: number }): Page<T> {
  return {
    items: items.slice(filter.offset, filter.offset + filter.limit),
    total: items.length,
    offset: filter.offset,
    limit: filter.limit,
  };
}

function inRange(at: number, f: { since?: number; until?: number }): boolean {
  return (f.since === undefined || at >= f.since) && (f.until === undefined || at < f.until);
}

interface FakeDelivery extends DeliveryListItem {
  history: DeliveryAttempt[];
}

const DESTINATIONS: Array<Pick<DestinationHealth, 'name' | 'kind' | 'transport'>> = [
  { name: 'pacs-main', kind: 'pacs', transport: 'dicom' },
  { name: 'ris-main', kind: 'ris', transport: 'mllp' },
];

export interface FakeStudyOptions {
  uid: string;
  accession: string | null;
  callingAe?: string;
  receivedAt?: number;
  /** State of the study's two deliveries (PACS, RIS). */
  deliveries?: [DeliveryState, DeliveryState];
}

export class FakeConsole implements ConsoleBackend {
  readonly studiesByUid = new Map<string, StudyStory>();
  readonly deliveriesById = new Map<number, FakeDelivery>();
  readonly auditTrail: AuditEntry[] = [];
  runningRules: unknown[] = [
    {
      name: 'chest',
      match: { attributes: { Modality: { oneOf: ['CR', 'DX'] } } },
      action: { model: 'demo', outputs: ['sc'], pacs: ['pacs-main'], ris: ['ris-main'] },
    },
  ];
  configSource = '/etc/cxr-gateway/config.yaml';
  private nextJob = 1;
  private nextDelivery = 1;
  now = T0 + 3_600_000;
  /** Calls that reached the backend's actions (a refused request must not add one). */
  readonly actions: string[] = [];

  addStudy(options: FakeStudyOptions): StudyStory {
    const at = options.receivedAt ?? T0;
    const jobId = this.nextJob++;
    const [pacsState, risState] = options.deliveries ?? ['delivered', 'delivered'];
    const deliveries = [
      this.makeDelivery(jobId, options.uid, 'pacs', 'pacs-main', pacsState, at, options.accession),
      this.makeDelivery(jobId, options.uid, 'ris', 'ris-main', risState, at, options.accession),
    ];
    const parked = deliveries.some((d) => d.state === 'parked');
    const job: JobStory = {
      id: jobId,
      revision: 1,
      state: parked ? 'parked' : 'done',
      createdAt: at,
      finishedAt: parked ? null : at + 5000,
      lastError: null,
      routing: {
        rule: 'chest',
        model: 'demo',
        outputs: ['sc'],
        pacs: ['pacs-main'],
        ris: ['ris-main'],
        priority: 'normal',
      },
      images: [
        {
          sopInstanceUid: `${options.uid}.1`,
          state: 'written',
          reason: null,
          classification: {
            classes: ['covid', 'normal', 'pneumonia'],
            probabilities: [0.1, 0.2, 0.7],
            predicted: 'pneumonia',
          },
          explanation: { targetClass: 'pneumonia', composite: 'lrp' },
          outputs: [{ kind: 'sc', sopInstanceUid: `${options.uid}.9`, seriesInstanceUid: `${options.uid}.8` }],
          overlayAvailable: true,
        },
      ],
      deliveries,
      hl7: [{ destination: 'ris-main', controlId: `C${jobId}`, text: `MSH|^~\\&|CXR|GW\rOBX|1|ST|pneumonia` }],
    };
    const story: StudyStory = {
      study: {
        studyInstanceUid: options.uid,
        state: 'ready',
        revision: 1,
        instanceCount: 1,
        firstReceivedAt: at,
        lastReceivedAt: at,
        callingAe: options.callingAe ?? 'MODALITY1',
        accessionNumber: options.accession,
        modality: 'CR',
        studyDate: '20261201',
      },
      images: [
        {
          sopInstanceUid: `${options.uid}.1`,
          sopClassUid: '1.2.840.10008.5.1.4.1.1.1',
          seriesInstanceUid: `${options.uid}.2`,
          callingAe: options.callingAe ?? 'MODALITY1',
          calledAe: 'CXR_GATEWAY',
          sourceIp: '127.0.0.1',
          receivedAt: at,
          viewPosition: 'PA',
          modality: 'CR',
        },
      ],
      jobs: [job],
    };
    this.studiesByUid.set(options.uid, story);
    return story;
  }

  private makeDelivery(
    jobId: number,
    uid: string,
    kind: 'pacs' | 'ris',
    destination: string,
    state: DeliveryState,
    at: number,
    accessionNumber: string | null,
  ): FakeDelivery {
    const id = this.nextDelivery++;
    const history: DeliveryAttempt[] = [
      {
        deliveryId: id,
        attempt: 1,
        at: at + 1000,
        outcome: state === 'parked' ? 'parked' : state === 'delivered' ? 'delivered' : 'retry',
        detail: state === 'parked' ? 'PEER_REFUSED: the RIS answered AR' : null,
      },
    ];
    const d: FakeDelivery = {
      id,
      jobId,
      studyInstanceUid: uid,
      revision: 1,
      kind,
      destination,
      state,
      attempts: 1,
      nextAttemptAt: at + 1000,
      lastError: state === 'parked' ? 'PEER_REFUSED: the RIS answered AR' : null,
      updatedAt: at + 1000,
      accessionNumber,
      history,
    };
    this.deliveriesById.set(id, d);
    return d;
  }

  private item(d: FakeDelivery): DeliveryListItem {
    const { history: _history, ...rest } = d;
    return { ...rest };
  }

  private audited(
    actor: Actor,
    action: string,
    target: string,
    before: unknown,
    after: unknown,
    detail: string | null = null,
  ): void {
    this.actions.push(`${action} ${target}`);
    this.recordAudit({
      category: 'admin',
      action,
      user: actor.user,
      role: actor.role,
      address: actor.address,
      target,
      outcome: 'success',
      before,
      after,
      detail,
    });
  }

  dashboard(): Dashboard {
    const parked = [...this.deliveriesById.values()].filter((d) => d.state === 'parked').length;
    return {
      throughput: {
        receivedLastHour: this.studiesByUid.size,
        receivedLast24h: this.studiesByUid.size,
        finishedLastHour: 1,
        finishedLast24h: 2,
      },
      queue: { jobs: 0, deliveries: [...this.deliveriesById.values()].filter((d) => d.state === 'pending').length },
      parked,
      models: [{ name: 'demo', backend: 'wasm', loaded: true, workers: 2 }],
      disk: { freeBytes: 50 * 1024 ** 3, minFreeBytes: 1024 ** 3 },
      status: parked > 0 ? 'degraded' : 'ok',
      problems: parked > 0 ? [`${parked} deliveries are parked`] : [],
      version: '0.1.0',
      startedAt: T0,
    };
  }

  private destinations(): DestinationHealth[] {
    const all = [...this.deliveriesById.values()];
    return DESTINATIONS.map((d) => ({
      ...d,
      lastSuccessAt: T0 + 2000,
      lastFailureAt: all.some((x) => x.destination === d.name && x.state === 'parked') ? T0 + 1000 : null,
      lastFailure: all.some((x) => x.destination === d.name && x.state === 'parked')
        ? 'PEER_REFUSED: the RIS answered AR'
        : null,
      pending: all.filter((x) => x.destination === d.name && x.state === 'pending').length,
      parked: all.filter((x) => x.destination === d.name && x.state === 'parked').length,
    }));
  }

  health(): ConsoleHealth {
    const d = this.dashboard();
    return {
      status: d.status,
      problems: d.problems,
      checks: { store: { ok: true } },
      destinations: this.destinations(),
    };
  }

  studies(filter: StudyFilter): Page<StudyListItem> {
    const items = [...this.studiesByUid.values()]
      .filter((s) => filter.state === undefined || s.study.state === filter.state)
      .filter((s) => filter.ae === undefined || s.study.callingAe === filter.ae)
      .filter((s) => filter.accession === undefined || s.study.accessionNumber === filter.accession)
      .filter((s) => inRange(s.study.lastReceivedAt, filter))
      .sort((a, b) => b.study.lastReceivedAt - a.study.lastReceivedAt)
      .map((s): StudyListItem => {
        const job = s.jobs[0];
        return {
          ...s.study,
          latestJob: job
            ? {
                id: job.id,
                revision: job.revision,
                state: job.state,
                rule: 'chest',
                predicted: job.images[0]?.classification?.predicted ?? null,
              }
            : null,
        };
      });
    return page(items, filter);
  }

  study(uid: string): StudyStory {
    const story = this.studiesByUid.get(uid);
    if (!story) throw new ConsoleRefusal(404, 'STUDY_UNKNOWN', `No study ${uid} is in the job store.`);
    return {
      ...story,
      jobs: story.jobs.map((j) => ({
        ...j,
        deliveries: j.deliveries.map((d) => {
          const live = this.deliveriesById.get(d.id) ?? (d as FakeDelivery);
          return { ...live, history: [...live.history] };
        }),
      })),
    };
  }

  async overlayPng(jobId: number, sop: string): Promise<Buffer> {
    for (const story of this.studiesByUid.values()) {
      const job = story.jobs.find((j) => j.id === jobId);
      const image = job?.images.find((i) => i.sopInstanceUid === sop);
      if (image?.overlayAvailable) return TINY_PNG;
    }
    throw new ConsoleRefusal(404, 'OVERLAY_UNKNOWN', `Job ${jobId} has no overlay for image ${sop}.`);
  }

  jobs(filter: JobFilter): Page<JobListItem> {
    const items = [...this.studiesByUid.values()].flatMap((s) =>
      s.jobs.map((j): JobListItem => ({
        id: j.id,
        studyInstanceUid: s.study.studyInstanceUid,
        revision: j.revision,
        state: j.state,
        rule: 'chest',
        priority: 'normal',
        instanceCount: 1,
        attempts: 1,
        lastError: j.lastError,
        createdAt: j.createdAt,
        updatedAt: j.createdAt,
        finishedAt: j.finishedAt,
        callingAe: s.study.callingAe,
        accessionNumber: s.study.accessionNumber,
        deliveries: {
          pending: j.deliveries.filter((d) => this.deliveriesById.get(d.id)?.state === 'pending').length,
          delivered: j.deliveries.filter((d) => this.deliveriesById.get(d.id)?.state === 'delivered').length,
          parked: j.deliveries.filter((d) => this.deliveriesById.get(d.id)?.state === 'parked').length,
          discarded: j.deliveries.filter((d) => this.deliveriesById.get(d.id)?.state === 'discarded').length,
        },
      })),
    );
    return page(
      items
        .filter((j) => filter.state === undefined || j.state === filter.state)
        .filter((j) => filter.ae === undefined || j.callingAe === filter.ae)
        .filter((j) => filter.accession === undefined || j.accessionNumber === filter.accession)
        .filter((j) => filter.studyInstanceUid === undefined || j.studyInstanceUid === filter.studyInstanceUid)
        .filter(
          (j) =>
            filter.destination === undefined ||
            [...this.deliveriesById.values()].some((d) => d.jobId === j.id && d.destination === filter.destination),
        )
        .filter((j) => inRange(j.createdAt, filter)),
      filter,
    );
  }

  deliveries(filter: DeliveryFilter): Page<DeliveryListItem> {
    const items = [...this.deliveriesById.values()]
      .filter((d) => filter.state === undefined || d.state === filter.state)
      .filter((d) => filter.destination === undefined || d.destination === filter.destination)
      .filter((d) => filter.kind === undefined || d.kind === filter.kind)
      .filter((d) => filter.studyInstanceUid === undefined || d.studyInstanceUid === filter.studyInstanceUid)
      .filter((d) => inRange(d.updatedAt, filter))
      .map((d) => this.item(d));
    return page(items, filter);
  }

  private parkedDelivery(id: number): FakeDelivery {
    const d = this.deliveriesById.get(id);
    if (!d) throw new ConsoleRefusal(404, 'DELIVERY_UNKNOWN', `No delivery ${id} is in the job store.`);
    if (d.state !== 'parked') {
      throw new ConsoleRefusal(
        409,
        'DELIVERY_NOT_PARKED',
        `Delivery ${id} is ${d.state}, not parked: only a parked delivery can be released or discarded.`,
      );
    }
    return d;
  }

  releaseDelivery(id: number, actor: Actor): DeliveryListItem[] {
    const d = this.parkedDelivery(id);
    const before = this.item(d);
    d.state = 'pending';
    d.nextAttemptAt = this.now;
    d.history.push({
      deliveryId: id,
      attempt: d.attempts,
      at: this.now,
      outcome: 'released',
      detail: `released by ${actor.user}`,
    });
    this.audited(actor, 'delivery.release', `delivery ${id}`, before, this.item(d));
    return [this.item(d)];
  }

  /** Nodes of the fake cluster and whether each drains. */
  readonly nodes = new Map<string, boolean>([['gw-1', false]]);

  drainNode(name: string, draining: boolean, actor: Actor): NodeDrainResult {
    if (!this.nodes.has(name)) throw new ConsoleRefusal(404, 'NODE_UNKNOWN', `no node named '${name}'`);
    this.nodes.set(name, draining);
    this.audited(actor, draining ? 'node.drain' : 'node.undrain', name, null, { draining });
    return { node: name, draining, holds: { jobs: 0, deliveries: 0 } };
  }

  releaseDestination(destination: string, actor: Actor): DeliveryListItem[] {
    if (!DESTINATIONS.some((d) => d.name === destination)) {
      throw new ConsoleRefusal(404, 'DESTINATION_UNKNOWN', `No destination ${destination} is configured.`);
    }
    const parked = [...this.deliveriesById.values()].filter(
      (d) => d.destination === destination && d.state === 'parked',
    );
    for (const d of parked) {
      d.state = 'pending';
      d.history.push({
        deliveryId: d.id,
        attempt: d.attempts,
        at: this.now,
        outcome: 'released',
        detail: `released by ${actor.user}`,
      });
    }
    this.audited(actor, 'delivery.release', `destination ${destination}`, null, { released: parked.length });
    return parked.map((d) => this.item(d));
  }

  discardDelivery(id: number, reason: string, actor: Actor): DeliveryListItem {
    if (reason.trim() === '' || reason.length > 500) {
      throw new ConsoleRefusal(400, 'REASON_REQUIRED', 'Give a reason (1 to 500 characters) to discard a delivery.');
    }
    const d = this.parkedDelivery(id);
    const before = this.item(d);
    // The store's discarded state (the seam's DeliveryState does not list it yet; the store part adds it).
    d.state = 'discarded';
    d.lastError = reason;
    d.history.push({
      deliveryId: id,
      attempt: d.attempts,
      at: this.now,
      outcome: 'discarded',
      detail: `${actor.user}: ${reason}`,
    });
    this.audited(actor, 'delivery.discard', `delivery ${id}`, before, this.item(d), reason);
    return this.item(d);
  }

  reprocessStudy(uid: string, actor: Actor): { jobId: number; revision: number } {
    const story = this.studiesByUid.get(uid);
    if (!story) throw new ConsoleRefusal(404, 'STUDY_UNKNOWN', `No study ${uid} is in the job store.`);
    const busy = story.jobs.find((j) => ['ready', 'processing', 'delivering'].includes(j.state));
    if (busy)
      throw new ConsoleRefusal(409, 'STUDY_BUSY', `Job ${busy.id} of the study is still ${busy.state}; wait for it.`);
    const revision = story.study.revision + 1;
    const jobId = this.nextJob++;
    story.study.revision = revision;
    story.jobs.unshift({
      id: jobId,
      revision,
      state: 'ready',
      createdAt: this.now,
      finishedAt: null,
      lastError: null,
      routing: null,
      images: [],
      deliveries: [],
      hl7: [],
    });
    this.audited(actor, 'study.reprocess', `study ${uid}`, null, { jobId, revision });
    return { jobId, revision };
  }

  async echoDestination(name: string, actor: Actor): Promise<EchoResult> {
    const d = DESTINATIONS.find((x) => x.name === name);
    if (!d) throw new ConsoleRefusal(404, 'DESTINATION_UNKNOWN', `No destination ${name} is configured.`);
    this.audited(actor, 'destination.echo', `destination ${name}`, null, null);
    return {
      destination: name,
      ok: true,
      ms: 3,
      detail: d.transport === 'dicom' ? 'C-ECHO answered Success' : 'MLLP connection accepted',
    };
  }

  runningConfig(): RunningConfig {
    return {
      source: this.configSource,
      config: { admin: { host: '127.0.0.1' }, rules: this.runningRules },
      restartNeededKeys: ['dicom', 'storage', 'admin'],
      pendingRestart: [],
      lastReload: { at: T0, ok: false, trigger: 'SIGHUP', error: 'rules.0.action.model: not-a-model' },
    };
  }

  rules(): unknown[] {
    return structuredClone(this.runningRules);
  }

  /** A rule: {name, action: {ignore: true} | {model, pacs?: names, ris?: names}}; destinations must be configured. */
  validateRules(candidate: unknown): RulesValidation {
    if (!Array.isArray(candidate))
      return { ok: false, issues: [{ path: 'rules', message: 'must be a list of rules' }] };
    const issues = candidate.flatMap((rule: unknown, i) => {
      const r = rule as { name?: unknown; action?: { pacs?: unknown; ris?: unknown; ignore?: unknown } } | null;
      const out: Array<{ path: string; message: string }> = [];
      if (typeof r?.name !== 'string') out.push({ path: `rules.${i}.name`, message: 'is required' });
      for (const kind of ['pacs', 'ris'] as const) {
        const names = r?.action?.[kind];
        if (Array.isArray(names))
          names.forEach((n: unknown, j) => {
            if (!DESTINATIONS.some((d) => d.name === n && d.kind === kind))
              out.push({
                path: `rules.${i}.action.${kind}.${j}`,
                message: `names destination '${String(n)}', which is not configured`,
              });
          });
      }
      return out;
    });
    return issues.length > 0 ? { ok: false, issues } : { ok: true, rules: candidate };
  }

  private refuseInvalid(candidate: unknown): unknown[] {
    const v = this.validateRules(candidate);
    if (!v.ok) {
      throw new ConsoleRefusal(
        422,
        'RULES_INVALID',
        `The rule set is not valid: ${v.issues.map((i) => `${i.path} ${i.message}`).join('; ')}.`,
      );
    }
    return v.rules;
  }

  dryRunRules(candidate: unknown, last: number): DryRun {
    const rules = this.refuseInvalid(candidate) as Array<{
      name: string;
      action: { ignore?: boolean; model?: string; pacs?: string[]; ris?: string[] };
    }>;
    const first = rules[0];
    const would: RoutingOutcome = first?.action.ignore
      ? { rule: first.name, ignored: true, model: null, outputs: [], pacs: [], ris: [], priority: null }
      : {
          rule: first?.name ?? null,
          ignored: false,
          model: first?.action.model ?? null,
          outputs: ['sc'],
          pacs: first?.action.pacs ?? [],
          ris: first?.action.ris ?? [],
          priority: 'normal',
        };
    const happened: RoutingOutcome = {
      rule: 'chest',
      ignored: false,
      model: 'demo',
      outputs: ['sc'],
      pacs: ['pacs-main'],
      ris: ['ris-main'],
      priority: 'normal',
    };
    const rows = [...this.studiesByUid.values()].slice(0, last).map((s) => {
      const changes = (['rule', 'ignored', 'model', 'outputs', 'pacs', 'ris', 'priority'] as const).filter(
        (k) => JSON.stringify(happened[k]) !== JSON.stringify(would[k]),
      );
      return {
        studyInstanceUid: s.study.studyInstanceUid,
        accessionNumber: s.study.accessionNumber,
        callingAe: s.study.callingAe,
        receivedAt: s.study.lastReceivedAt,
        happened,
        would,
        changes,
      };
    });
    return { studies: rows.length, changed: rows.filter((r) => r.changes.length > 0).length, rows };
  }

  async applyRules(candidate: unknown, actor: Actor): Promise<{ backup: string; rules: number }> {
    const rules = this.refuseInvalid(candidate);
    const before = this.runningRules;
    this.runningRules = structuredClone(rules);
    const backup = `${this.configSource}.2026-12-01T09-00-00.bak`;
    this.audited(actor, 'rules.apply', 'rules', before, rules);
    return { backup, rules: rules.length };
  }

  audit(filter: AuditFilter): Page<AuditEntry> {
    const items = [...this.auditTrail]
      .reverse()
      .filter((e) => filter.category === undefined || e.category === filter.category)
      .filter((e) => filter.action === undefined || e.action === filter.action)
      .filter((e) => filter.user === undefined || e.user === filter.user)
      .filter((e) => inRange(e.at, filter));
    return page(items, filter);
  }

  recordAudit(entry: Omit<AuditEntry, 'id' | 'at' | 'before' | 'after'> & { before?: unknown; after?: unknown }): void {
    this.auditTrail.push({
      ...entry,
      id: this.auditTrail.length + 1,
      at: this.now,
      before: entry.before ?? null,
      after: entry.after ?? null,
    });
  }
}

/** Users with plain passwords (tests only) and sessions that end after `idleMs` without use, on a movable clock. */
export class FakeAuth implements AuthBackend {
  readonly users = new Map<string, { password: string; role: Role }>();
  readonly sessions = new Map<string, SessionInfo & { lastSeen: number; address: string }>();
  now = T0;

  constructor(readonly idleMs = 30 * 60_000) {}

  addUser(user: string, password: string, role: Role): this {
    this.users.set(user, { password, role });
    return this;
  }

  async verify(user: string, password: string): Promise<{ user: string; role: Role } | undefined> {
    const found = this.users.get(user);
    return found && found.password === password ? { user, role: found.role } : undefined;
  }

  createSession(user: string, role: Role, address: string): string {
    const token = randomBytes(24).toString('base64url');
    this.sessions.set(token, {
      user,
      role,
      createdAt: this.now,
      expiresAt: this.now + this.idleMs,
      lastSeen: this.now,
      address,
    });
    return token;
  }

  session(token: string): SessionInfo | undefined {
    const s = this.sessions.get(token);
    if (!s) return undefined;
    if (this.now >= s.expiresAt) {
      this.sessions.delete(token);
      return undefined;
    }
    s.lastSeen = this.now;
    s.expiresAt = this.now + this.idleMs;
    return { user: s.user, role: s.role, createdAt: s.createdAt, expiresAt: s.expiresAt };
  }

  endSession(token: string): void {
    this.sessions.delete(token);
  }

  hasUsers(): boolean {
    return this.users.size > 0;
  }
}
