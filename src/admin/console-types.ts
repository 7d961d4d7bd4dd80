import type { AttemptRowOut, DeliveryRowOut } from '../store/console-queries.js';
import type { DeliveryKind, DeliveryState } from '../store/pipeline-store.js';
import type { JobState, StudyState } from '../store/job-store.js';

/**
 * The seam between the operations console's HTTP side (admin-server.ts, http/*: routes, pages, sessions) and
 * what it reads and does (console-service.ts over the job store, the pipeline, the destinations and the config
 * file). The HTTP side knows nothing of SQL or of the pipeline; the service knows nothing of HTTP. Every action
 * takes the acting user (who, from where) so that the audit trail records it in the same transaction.
 */

export type Role = 'viewer' | 'admin';

/** Who does something: a console user, or the command line (OS user) working on the store. */
export interface Actor {
  /** Console user name, or `cli:<os user>` for the command line. */
  user: string;
  role: Role;
  /** The client's address as the console saw it (behind a reverse proxy: the forwarded one); 'local' for the CLI. */
  address: string;
}

export interface PageRequest {
  offset: number;
  /** 1..500 */
  limit: number;
}

export interface Page<T> {
  items: T[];
  /** All rows that match the filter, for the pager. */
  total: number;
  offset: number;
  limit: number;
}

/** Epoch ms bounds; a row matches when since <= its time < until. */
export interface TimeRange {
  since?: number;
  until?: number;
}

export interface StudyFilter extends PageRequest, TimeRange {
  state?: StudyState;
  /** Calling AE of the modality that sent it (exact). */
  ae?: string;
  /** Accession number (exact). */
  accession?: string;
}

export interface JobFilter extends PageRequest, TimeRange {
  state?: JobState;
  /** Jobs with a delivery to this destination. */
  destination?: string;
  ae?: string;
  accession?: string;
  studyInstanceUid?: string;
}

export interface DeliveryFilter extends PageRequest, TimeRange {
  state?: DeliveryState;
  destination?: string;
  kind?: DeliveryKind;
  studyInstanceUid?: string;
}

export interface StudyListItem {
  studyInstanceUid: string;
  state: StudyState;
  revision: number;
  instanceCount: number;
  firstReceivedAt: number;
  lastReceivedAt: number;
  callingAe: string;
  accessionNumber: string | null;
  modality: string | null;
  studyDate: string | null;
  /** The newest job of the study, if any. */
  latestJob: { id: number; revision: number; state: JobState; rule: string | null; predicted: string | null } | null;
}

export interface JobListItem {
  id: number;
  studyInstanceUid: string;
  revision: number;
  state: JobState;
  rule: string | null;
  priority: 'urgent' | 'normal';
  instanceCount: number;
  attempts: number;
  lastError: string | null;
  createdAt: number;
  updatedAt: number;
  finishedAt: number | null;
  callingAe: string;
  accessionNumber: string | null;
  /** Delivery counts of the job by state. */
  deliveries: Record<DeliveryState, number>;
}

/** A delivery as the console lists it: the store's row without its payload (file paths stay on the server). */
export type DeliveryListItem = Omit<DeliveryRowOut, 'payload'>;

/** One try of a delivery or admin action on it, as the store recorded it. */
export type DeliveryAttempt = AttemptRowOut;

export interface StudyImageStory {
  sopInstanceUid: string;
  sopClassUid: string;
  seriesInstanceUid: string | null;
  callingAe: string;
  calledAe: string;
  sourceIp: string;
  receivedAt: number;
  /** Key attributes (modality, view position, body part...); never the patient's name. */
  viewPosition: string | null;
  modality: string | null;
}

export interface JobImageStory {
  sopInstanceUid: string;
  state: 'pending' | 'written' | 'skipped' | 'failed';
  /** Why skipped (eligibility) or failed. */
  reason: string | null;
  classification: { classes: string[]; probabilities: number[]; predicted: string } | null;
  explanation: { targetClass: string; composite: string } | null;
  /** Objects written for the PACS (SC overlay, SR). */
  outputs: Array<{ kind: 'sc' | 'sr'; sopInstanceUid: string; seriesInstanceUid: string }>;
  /** Whether GET .../overlay.png can render this image's SC overlay (the file is still in the spool). */
  overlayAvailable: boolean;
}

export interface JobStory {
  id: number;
  revision: number;
  state: JobState;
  createdAt: number;
  finishedAt: number | null;
  lastError: string | null;
  /** What routing decided: the rule and its action, or why the job was ignored. */
  routing:
    | {
        rule: string;
        model: string;
        outputs: string[];
        pacs: string[];
        ris: string[];
        priority: 'urgent' | 'normal';
      }
    | { ignored: string }
    | null;
  images: JobImageStory[];
  deliveries: Array<DeliveryListItem & { history: DeliveryAttempt[] }>;
  /** HL7 messages written for the RIS (the ORU^R01 text, segments separated by \r). */
  hl7: Array<{ destination: string; controlId: string; text: string }>;
}

export interface StudyStory {
  study: Omit<StudyListItem, 'latestJob'>;
  images: StudyImageStory[];
  /** Newest revision first. */
  jobs: JobStory[];
}

export interface DestinationHealth {
  name: string;
  kind: DeliveryKind;
  /** 'dicom' | 'folder' | 'mllp' */
  transport: string;
  lastSuccessAt: number | null;
  lastFailureAt: number | null;
  /** `cause: sentence` of the last failure. */
  lastFailure: string | null;
  pending: number;
  parked: number;
}

export interface ConsoleHealth {
  status: 'ok' | 'degraded';
  problems: string[];
  /** The /healthz checks object (store, disk, models, stages...). */
  checks: Record<string, unknown>;
  destinations: DestinationHealth[];
}

export interface Dashboard {
  /** Studies received and jobs finished over the last hour and 24 hours. */
  throughput: { receivedLastHour: number; receivedLast24h: number; finishedLastHour: number; finishedLast24h: number };
  /** Jobs ready or processing, deliveries pending. */
  queue: { jobs: number; deliveries: number };
  parked: number;
  models: Array<{ name: string; backend: string | null; loaded: boolean; workers: number }>;
  disk: { freeBytes: number; minFreeBytes: number };
  status: 'ok' | 'degraded';
  problems: string[];
  version: string;
  startedAt: number;
}

export interface RunningConfig {
  /** Where it was read from (a path, or 'embedded default'). */
  source: string;
  /** The effective config as JSON (secrets such as key passwords redacted). */
  config: Record<string, unknown>;
  /** Sections a reload does not apply: changing them in the file needs a restart. */
  restartNeededKeys: string[];
  /** Sections that differ between the file on disk and the running config and need a restart. */
  pendingRestart: string[];
  lastReload: { at: number; ok: boolean; trigger: string; error: string | null } | null;
}

export interface RuleIssue {
  /** Dotted path into the candidate, e.g. `rules.2.action.pacs.0`. */
  path: string;
  message: string;
}

export type RulesValidation = { ok: true; rules: unknown[] } | { ok: false; issues: RuleIssue[] };

export interface RoutingOutcome {
  /** Rule name, or null when no rule matched. */
  rule: string | null;
  ignored: boolean;
  model: string | null;
  outputs: string[];
  pacs: string[];
  ris: string[];
  priority: 'urgent' | 'normal' | null;
}

export interface DryRunRow {
  studyInstanceUid: string;
  accessionNumber: string | null;
  callingAe: string;
  receivedAt: number;
  /** What routing decided for its newest job (null: never routed yet). */
  happened: RoutingOutcome | null;
  /** What the candidate rules would decide. */
  would: RoutingOutcome;
  /** Which of rule/ignored/model/outputs/pacs/ris/priority differ; empty = unchanged. */
  changes: string[];
}

export interface DryRun {
  studies: number;
  changed: number;
  rows: DryRunRow[];
}

export interface AuditEntry {
  id: number;
  at: number;
  /** 'admin' for console/CLI actions; issue 17 adds 'dicom', 'hl7', 'security'. */
  category: string;
  /** e.g. 'delivery.release', 'delivery.discard', 'study.reprocess', 'rules.apply', 'user.login', 'user.login-failed' */
  action: string;
  user: string | null;
  role: string | null;
  address: string | null;
  /** What it acted on, e.g. 'delivery 12', 'study 1.2.3', 'destination ris-main'. */
  target: string | null;
  outcome: 'success' | 'failure';
  /** JSON of the state before and after (null when not applicable). */
  before: unknown;
  after: unknown;
  detail: string | null;
}

export interface AuditFilter extends PageRequest, TimeRange {
  category?: string;
  action?: string;
  user?: string;
}

export interface EchoResult {
  destination: string;
  ok: boolean;
  ms: number;
  /** What the peer answered or why it failed (no patient data: an echo carries none). */
  detail: string;
}

/**
 * Thrown by the service for a request it refuses; the HTTP side maps `status` to the response and sends
 * `{ error: code, message }`. Nothing has changed when this is thrown.
 */
export class ConsoleRefusal extends Error {
  constructor(
    readonly status: 400 | 403 | 404 | 409 | 422 | 503,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'ConsoleRefusal';
  }
}

/** A node drained or undrained, and what it still holds (live leases) at that moment. */
export interface NodeDrainResult {
  node: string;
  draining: boolean;
  holds: { jobs: number; deliveries: number };
}

/** What the console reads and does. Implemented by console-service.ts; admin-server.ts only calls it. */
export interface ConsoleBackend {
  dashboard(): Dashboard;
  health(): ConsoleHealth;
  studies(filter: StudyFilter): Page<StudyListItem>;
  /** Throws ConsoleRefusal 404 for an unknown study. */
  study(studyInstanceUid: string): StudyStory;
  /** The SC overlay of a written image as PNG; ConsoleRefusal 404 when the job, image or file is not there. */
  overlayPng(jobId: number, sopInstanceUid: string): Promise<Buffer>;
  jobs(filter: JobFilter): Page<JobListItem>;
  deliveries(filter: DeliveryFilter): Page<DeliveryListItem>;

  /** parked -> pending, due now (its held-back RIS deliveries with it). 404 unknown id, 409 not parked. */
  releaseDelivery(id: number, actor: Actor): DeliveryListItem[];
  /** Every parked delivery of one destination. 404 unknown destination (neither configured nor in the store). */
  releaseDestination(destination: string, actor: Actor): DeliveryListItem[];
  /** parked -> discarded with a reason (required, 1..500 chars). 404 unknown, 409 not parked, 400 no reason. */
  discardDelivery(id: number, reason: string, actor: Actor): DeliveryListItem;
  /**
   * A new revision of the study, routed and processed with the running rules and models. 404 unknown study,
   * 409 when a job of it is still ready/processing/delivering or its files were purged by retention.
   */
  reprocessStudy(studyInstanceUid: string, actor: Actor): { jobId: number; revision: number };
  /** C-ECHO (DICOM) or an MLLP connect (RIS) to a configured destination; 404 unknown, folders: a write check. */
  echoDestination(name: string, actor: Actor): Promise<EchoResult>;
  /**
   * Drains a cluster node (it claims no new work and finishes what it holds) or, with `draining` false, lets it
   * claim again: as `cxr-gateway drain`. 404 for a node that never registered in the store.
   */
  drainNode(name: string, draining: boolean, actor: Actor): NodeDrainResult;

  runningConfig(): RunningConfig;
  rules(): unknown[];
  validateRules(candidate: unknown): RulesValidation;
  /** The candidate (validated first: 422 with the issues) against the newest `last` studies (1..1000). */
  dryRunRules(candidate: unknown, last: number): DryRun;
  /**
   * Validates (422 with the issues: key and reason), writes the config file atomically with the previous
   * version kept beside it, then reloads. 409 when the daemon runs on the embedded default (no file to write).
   */
  applyRules(candidate: unknown, actor: Actor): Promise<{ backup: string; rules: number }>;

  audit(filter: AuditFilter): Page<AuditEntry>;
  /** For the HTTP side: record an event it alone sees (login, logout, failed login, refused CSRF). */
  recordAudit(entry: Omit<AuditEntry, 'id' | 'at' | 'before' | 'after'> & { before?: unknown; after?: unknown }): void;
}

export interface SessionInfo {
  user: string;
  role: Role;
  createdAt: number;
  expiresAt: number;
}

/** Local users and their sessions (in the job store, so a restart keeps them; tokens are stored hashed). */
export interface AuthBackend {
  /** The user when the password is right; undefined otherwise (unknown user or wrong password take the same time). */
  verify(user: string, password: string): Promise<{ user: string; role: Role } | undefined>;
  /** A new session; returns the opaque token for the cookie. */
  createSession(user: string, role: Role, address: string): string;
  /** The session of a token, sliding its expiry; undefined when unknown or expired. */
  session(token: string): SessionInfo | undefined;
  endSession(token: string): void;
  /** Whether any user exists (the login page says how to add the first one when none does). */
  hasUsers(): boolean;
}
