/**
 * JSON schemas of the console API: Fastify validates params, query strings and bodies with them (a bad value is a
 * 400 naming it) and @fastify/swagger turns them into /api/openapi.json. Response schemas document the shapes of
 * console-types.ts; responses are written with JSON.stringify (console-app.ts), so a gap in a schema never drops a
 * field silently.
 */

import type { DeliveryKind } from '../../store/pipeline-store.js';

type Schema = Record<string, unknown>;

const str: Schema = { type: 'string' };
const int: Schema = { type: 'integer' };
const num: Schema = { type: 'number' };
const bool: Schema = { type: 'boolean' };
const strList: Schema = { type: 'array', items: str };
/** Epoch milliseconds. */
const time: Schema = { type: 'integer', description: 'epoch milliseconds' };
const anyValue: Schema = {};

function nullable(schema: Schema): Schema {
  const type = schema.type;
  return typeof type === 'string' ? { ...schema, type: [type, 'null'] } : { anyOf: [schema, { type: 'null' }] };
}

function object(properties: Record<string, Schema>, optional: string[] = []): Schema {
  return {
    type: 'object',
    properties,
    required: Object.keys(properties).filter((k) => !optional.includes(k)),
  };
}

// The filter values, checked against the store's types so that a renamed state fails the build here.
import { JOB_STATES, STUDY_STATES } from '../../store/job-store.js';
import { DELIVERY_STATES } from '../../store/pipeline-store.js';

export { DELIVERY_STATES, JOB_STATES, STUDY_STATES };
export const DELIVERY_KINDS = ['pacs', 'ris'] as const satisfies readonly DeliveryKind[];

const INSTANT_PATTERN =
  '^(\\d{4}-\\d{2}-\\d{2}([T ]\\d{2}:\\d{2}(:\\d{2}(\\.\\d+)?)?(Z|[+-]\\d{2}:?\\d{2})?)?|\\d{10,15})$';
const UID_PATTERN = '^[0-9.]+$';

/** What each pattern of these schemas means, in words: a refusal says this rather than the regular expression. */
export const PATTERN_MEANINGS: Readonly<Record<string, string>> = {
  [INSTANT_PATTERN]: 'an ISO 8601 date or date-time (e.g. 2026-12-06 or 2026-12-06T08:30Z), or epoch milliseconds',
  [UID_PATTERN]: 'a DICOM UID (digits and dots)',
};

/** `since`/`until`: an ISO 8601 date or date-time (UTC unless it says otherwise), or epoch milliseconds. */
const instant: Schema = {
  type: 'string',
  pattern: INSTANT_PATTERN,
  description: 'ISO 8601 date or date-time, or epoch milliseconds',
};

const pageQuery: Record<string, Schema> = {
  offset: { type: 'integer', minimum: 0, default: 0 },
  limit: { type: 'integer', minimum: 1, maximum: 500, default: 50 },
  since: instant,
  until: instant,
};

function query(properties: Record<string, Schema>): Schema {
  return { type: 'object', properties: { ...properties, ...pageQuery }, additionalProperties: false };
}

const name: Schema = { type: 'string', minLength: 1, maxLength: 200 };
const uid: Schema = { type: 'string', minLength: 1, maxLength: 64, pattern: UID_PATTERN };

export const studiesQuery = query({ state: { type: 'string', enum: STUDY_STATES }, ae: name, accession: name });
export const jobsQuery = query({
  state: { type: 'string', enum: JOB_STATES },
  destination: name,
  ae: name,
  accession: name,
  study: uid,
});
export const deliveriesQuery = query({
  state: { type: 'string', enum: DELIVERY_STATES },
  destination: name,
  kind: { type: 'string', enum: DELIVERY_KINDS },
  study: uid,
});
export const auditQuery = query({ category: name, action: name, user: name });

export const studyParams = object({ uid });
export const overlayParams = object({ jobId: { type: 'integer', minimum: 1 }, sop: uid });
export const deliveryParams = object({ id: { type: 'integer', minimum: 1 } });
export const destinationParams = object({ name });
export const nodeParams = object({ name });
export const drainBody = { ...object({ draining: bool }), additionalProperties: false };

export const discardBody = {
  ...object({ reason: { type: 'string', minLength: 1, maxLength: 500 } }),
  additionalProperties: false,
};
export const rulesBody = { ...object({ rules: anyValue }), additionalProperties: false };
export const dryRunBody = {
  ...object({ rules: anyValue, last: { type: 'integer', minimum: 1, maximum: 1000, default: 50 } }, ['last']),
  additionalProperties: false,
};

export const errorShape = object({ error: str, message: str });

function pageOf(item: Schema): Schema {
  return object({ items: { type: 'array', items: item }, total: int, offset: int, limit: int });
}

const jobSummary = object({ id: int, revision: int, state: str, rule: nullable(str), predicted: nullable(str) });
const studyFields: Record<string, Schema> = {
  studyInstanceUid: str,
  state: str,
  revision: int,
  instanceCount: int,
  firstReceivedAt: time,
  lastReceivedAt: time,
  callingAe: str,
  accessionNumber: nullable(str),
  modality: nullable(str),
  studyDate: nullable(str),
};
export const studyListItem = object({ ...studyFields, latestJob: nullable(jobSummary) });

export const jobListItem = object({
  id: int,
  studyInstanceUid: str,
  revision: int,
  state: str,
  rule: nullable(str),
  priority: str,
  instanceCount: int,
  attempts: int,
  lastError: nullable(str),
  createdAt: time,
  updatedAt: time,
  finishedAt: nullable(time),
  callingAe: str,
  accessionNumber: nullable(str),
  deliveries: { type: 'object', additionalProperties: int },
});

const deliveryFields: Record<string, Schema> = {
  id: int,
  jobId: int,
  studyInstanceUid: str,
  revision: int,
  kind: str,
  destination: str,
  state: str,
  attempts: int,
  nextAttemptAt: time,
  lastError: nullable(str),
  updatedAt: time,
  accessionNumber: nullable(str),
};
export const deliveryListItem = object(deliveryFields);

const attempt = object({ deliveryId: int, attempt: int, at: time, outcome: str, detail: nullable(str) });
const routing = nullable({
  anyOf: [
    object({ rule: str, model: str, outputs: strList, pacs: strList, ris: strList, priority: str }),
    object({ ignored: str }),
  ],
});
const jobStory = object({
  id: int,
  revision: int,
  state: str,
  createdAt: time,
  finishedAt: nullable(time),
  lastError: nullable(str),
  routing,
  images: {
    type: 'array',
    items: object({
      sopInstanceUid: str,
      state: str,
      reason: nullable(str),
      classification: nullable(
        object({ classes: strList, probabilities: { type: 'array', items: num }, predicted: str }),
      ),
      explanation: nullable(object({ targetClass: str, composite: str })),
      outputs: { type: 'array', items: object({ kind: str, sopInstanceUid: str, seriesInstanceUid: str }) },
      overlayAvailable: bool,
    }),
  },
  deliveries: { type: 'array', items: object({ ...deliveryFields, history: { type: 'array', items: attempt } }) },
  hl7: { type: 'array', items: object({ destination: str, controlId: str, text: str }) },
});
export const studyStory = object({
  study: object(studyFields),
  images: {
    type: 'array',
    items: object({
      sopInstanceUid: str,
      sopClassUid: str,
      seriesInstanceUid: nullable(str),
      callingAe: str,
      calledAe: str,
      sourceIp: str,
      receivedAt: time,
      viewPosition: nullable(str),
      modality: nullable(str),
    }),
  },
  jobs: { type: 'array', items: jobStory },
});

export const destinationHealth = object({
  name: str,
  kind: str,
  transport: str,
  lastSuccessAt: nullable(time),
  lastFailureAt: nullable(time),
  lastFailure: nullable(str),
  pending: int,
  parked: int,
});
export const consoleHealth = object({
  status: { type: 'string', enum: ['ok', 'degraded'] },
  problems: strList,
  checks: { type: 'object', additionalProperties: true },
  destinations: { type: 'array', items: destinationHealth },
});
export const dashboard = object({
  throughput: object({ receivedLastHour: int, receivedLast24h: int, finishedLastHour: int, finishedLast24h: int }),
  queue: object({ jobs: int, deliveries: int }),
  parked: int,
  models: { type: 'array', items: object({ name: str, backend: nullable(str), loaded: bool, workers: int }) },
  disk: object({ freeBytes: num, minFreeBytes: num }),
  status: { type: 'string', enum: ['ok', 'degraded'] },
  problems: strList,
  version: str,
  startedAt: time,
});
export const runningConfig = object({
  source: str,
  config: { type: 'object', additionalProperties: true },
  restartNeededKeys: strList,
  pendingRestart: strList,
  lastReload: nullable(object({ at: time, ok: bool, trigger: str, error: nullable(str) })),
});
export const rulesList = object({ rules: { type: 'array', items: anyValue } });
const ruleIssue = object({ path: str, message: str });
export const rulesValidation = object(
  { ok: bool, rules: { type: 'array', items: anyValue }, issues: { type: 'array', items: ruleIssue } },
  ['rules', 'issues'],
);
const outcome = object({
  rule: nullable(str),
  ignored: bool,
  model: nullable(str),
  outputs: strList,
  pacs: strList,
  ris: strList,
  priority: nullable(str),
});
export const dryRun = object({
  studies: int,
  changed: int,
  rows: {
    type: 'array',
    items: object({
      studyInstanceUid: str,
      accessionNumber: nullable(str),
      callingAe: str,
      receivedAt: time,
      happened: nullable(outcome),
      would: outcome,
      changes: strList,
    }),
  },
});
export const applyResult = object({ backup: str, rules: int });
export const auditEntry = object({
  id: int,
  at: time,
  category: str,
  action: str,
  user: nullable(str),
  role: nullable(str),
  address: nullable(str),
  target: nullable(str),
  outcome: { type: 'string', enum: ['success', 'failure'] },
  before: anyValue,
  after: anyValue,
  detail: nullable(str),
});
export const echoResult = object({ destination: str, ok: bool, ms: num, detail: str });
export const releaseResult = object({ released: { type: 'array', items: deliveryListItem } });
export const reprocessResult = object({ jobId: int, revision: int });
export const drainResult = object({ node: str, draining: bool, holds: object({ jobs: int, deliveries: int }) });
export const sessionInfo = object({
  user: str,
  role: { type: 'string', enum: ['viewer', 'admin'] },
  createdAt: time,
  expiresAt: time,
  csrfToken: str,
});

export const studiesPage = pageOf(studyListItem);
export const jobsPage = pageOf(jobListItem);
export const deliveriesPage = pageOf(deliveryListItem);
export const auditPage = pageOf(auditEntry);
