import test from 'ava';
import { mkdtempSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import {
  ConsoleService,
  type AuditLog,
  type AuditRecord,
  type AuditRow,
  type ConsoleServiceOptions,
} from '../../src/admin/console-service.js';
import { ConsoleRefusal, type Actor } from '../../src/admin/console-types.js';
import type { Health, ReloadRecord } from '../../src/admin/health.js';
import { loadConfig } from '../../src/config/load-config.js';
import { configSchema, type GatewayConfig } from '../../src/config/schema.js';
import { createLogger } from '../../src/logging/logger.js';
import { writeSecondaryCapture } from '../../src/reporting/secondary-capture.js';
import {
  StoreRefusal,
  type ConsoleQueries,
  type DeliveryRowOut,
  type JobRowOut,
  type StoreActor,
  type StudyRowsOut,
} from '../../src/store/console-queries.js';
import type { DeliveryState } from '../../src/store/pipeline-store.js';
import { JobStore } from '../../src/store/job-store.js';
import { NodeRegistry } from '../../src/store/nodes.js';
import { makeImageFile } from '../helpers/dicom-factory.js';
import { writtenResult } from '../helpers/pipeline-harness.js';
import { CLASSIFICATION, CREATED_AT, EXPLANATION, MODEL } from '../reporting/reporting-fixtures.js';

// The console service against an in-memory ConsoleQueries (the real ConsoleStore is helper "store"'s), a real
// config file, real SC and HL7 files: mapping, refusals, wake-ups, audit of its own actions.

const ADMIN: Actor = { user: 'alice', role: 'admin', address: '10.0.0.5' };
const VIEWER: Actor = { user: 'victor', role: 'viewer', address: '10.0.0.6' };
const NOW = Date.UTC(2026, 11, 6, 12, 0, 0);

const silent = () =>
  createLogger({ level: 'error', format: 'json', stream: new Writable({ write: (_c, _e, cb) => cb() }) });

function delivery(over: Partial<DeliveryRowOut> = {}): DeliveryRowOut {
  return {
    id: 7,
    jobId: 3,
    studyInstanceUid: '1.2.3',
    revision: 0,
    kind: 'ris',
    destination: 'ris-main',
    state: 'parked',
    attempts: 1,
    nextAttemptAt: 0,
    lastError: 'hl7-application-reject: the RIS answered AR',
    updatedAt: NOW - 1000,
    payload: JSON.stringify({ kind: 'ris', file: '/nonexistent/x.hl7', controlId: 'C1' }),
    accessionNumber: 'ACC-7',
    ...over,
  };
}

/** Delivery counts by state, as the jobs list has them. */
function counts(deliveries: ReadonlyArray<{ state: DeliveryState }>): Record<DeliveryState, number> {
  const byState = { pending: 0, delivered: 0, parked: 0 } as Record<DeliveryState, number>;
  for (const d of deliveries) byState[d.state] = (byState[d.state] ?? 0) + 1;
  return byState;
}

/** In-memory ConsoleQueries: records the calls, refuses like the store does. */
class FakeQueries implements ConsoleQueries {
  calls: string[] = [];
  rows = new Map<string, StudyRowsOut>();
  parked = new Map<number, DeliveryRowOut>([[7, delivery()]]);
  activity: ReturnType<ConsoleQueries['destinationActivity']> = [];
  studies: ConsoleQueries['studies'] = (f) => ({ items: [], total: 0, offset: f.offset, limit: f.limit });
  studyRows = (uid: string) => this.rows.get(uid);
  studyOfJob = (jobId: number) =>
    [...this.rows.values()].find((r) => r.jobs.some((j) => j.id === jobId))?.study.studyInstanceUid;
  jobs: ConsoleQueries['jobs'] = (f) => {
    const all: JobRowOut[] = [...this.rows.values()]
      .flatMap((r) => r.jobs)
      .filter((j) => f.state === undefined || j.state === f.state)
      .map(({ images: _images, deliveries, ...job }) => ({ ...job, deliveries: counts(deliveries) }));
    return { items: all.slice(f.offset, f.offset + f.limit), total: all.length, offset: f.offset, limit: f.limit };
  };
  deliveries: ConsoleQueries['deliveries'] = (f) => {
    const all = [...this.parked.values()].filter((d) => f.state === undefined || d.state === f.state);
    return { items: all, total: all.length, offset: f.offset, limit: f.limit };
  };
  delivery = (id: number) => this.parked.get(id);
  recentStudies = () => [];
  throughput = (since: number) => ({
    studiesReceived: since > NOW - 2 * 3600_000 ? 2 : 30,
    instancesReceived: 0,
    jobsFinished: since > NOW - 2 * 3600_000 ? 1 : 25,
  });
  destinationActivity = () => this.activity;
  releaseDelivery = (id: number, actor: StoreActor, now: number) => {
    this.calls.push(`release ${id} by ${actor.user} at ${now}`);
    const d = this.parked.get(id);
    if (d === undefined) throw new StoreRefusal(404, 'DELIVERY_NOT_FOUND', `no delivery ${id}`);
    if (d.state !== 'parked') throw new StoreRefusal(409, 'DELIVERY_NOT_PARKED', `delivery ${id} is ${d.state}`);
    const released = { ...d, state: 'pending' as const, nextAttemptAt: now };
    this.parked.set(id, released);
    return [released];
  };
  releaseDestination = (destination: string) => {
    this.calls.push(`release-destination ${destination}`);
    return [];
  };
  discardDelivery = (id: number, reason: string) => {
    this.calls.push(`discard ${id}: ${reason}`);
    const d = this.parked.get(id);
    if (d === undefined) throw new StoreRefusal(404, 'DELIVERY_NOT_FOUND', `no delivery ${id}`);
    return { ...d, state: 'parked' as const, lastError: `discarded: ${reason}` };
  };
  reprocessStudy = (uid: string) => {
    this.calls.push(`reprocess ${uid}`);
    if (!this.rows.has(uid)) throw new StoreRefusal(404, 'STUDY_NOT_FOUND', `no study ${uid}`);
    return { jobId: 99, revision: 1 };
  };
}

class MemoryAudit implements AuditLog {
  entries: Array<AuditRecord & { at: number }> = [];
  record(entry: AuditRecord, now: number): number {
    this.entries.push({ ...entry, at: now });
    return this.entries.length;
  }
  list(filter: { offset: number; limit: number }) {
    const items: AuditRow[] = this.entries.map((e, i) => ({
      id: i + 1,
      at: e.at,
      category: e.category,
      action: e.action,
      user: e.user,
      role: e.role,
      address: e.address,
      target: e.target,
      outcome: e.outcome,
      before: e.before === undefined ? null : JSON.stringify(e.before),
      after: e.after === undefined ? null : JSON.stringify(e.after),
      detail: e.detail ?? null,
    }));
    return { items, total: items.length, offset: filter.offset, limit: filter.limit };
  }
}

function baseConfig(): GatewayConfig {
  return configSchema.parse({
    models: { demo: '/models/demo' },
    destinations: {
      pacs: [{ type: 'folder', name: 'pacs-folder', path: os.tmpdir() }],
      ris: [{ type: 'mllp', name: 'ris-main', host: '127.0.0.1', port: 2575 }],
    },
    rules: [{ name: 'all', action: { model: 'demo', pacs: ['pacs-folder'], ris: ['ris-main'] } }],
  });
}

function service(over: Partial<ConsoleServiceOptions> = {}) {
  const queries = new FakeQueries();
  const audit = new MemoryAudit();
  let wakes = 0;
  const reloads: Array<{ next: GatewayConfig; trigger: string }> = [];
  let config = baseConfig();
  const health: Health = { status: 'ok', problems: [], checks: { store: true } };
  const s = new ConsoleService({
    queries,
    audit,
    config: () => config,
    configPath: undefined,
    loadConfig: (p) => loadConfig(p).config,
    health: () => health,
    models: () => [{ name: 'demo', loaded: true, backend: 'wasm', workers: 2 }],
    freeDiskBytes: () => 5e9,
    wake: () => void wakes++,
    reload: async (next, trigger): Promise<ReloadRecord> => {
      reloads.push({ next, trigger });
      config = next;
      return { at: NOW, ok: true, trigger, error: null };
    },
    lastReload: () => undefined,
    now: () => NOW,
    version: '1.2.3',
    startedAt: NOW - 60_000,
    logger: silent(),
    ...over,
  });
  return { s, queries, audit, reloads, wakes: () => wakes, setConfig: (c: GatewayConfig) => (config = c) };
}

test('releaseDelivery: releases through the store, wakes the pipeline, hides the payload', (t) => {
  const { s, queries, wakes } = service();
  const released = s.releaseDelivery(7, ADMIN);
  t.deepEqual(queries.calls, [`release 7 by alice at ${NOW}`]);
  t.is(wakes(), 1);
  t.is(released.length, 1);
  t.like(released[0], { id: 7, state: 'pending', destination: 'ris-main' });
  t.false('payload' in (released[0] ?? {}));
});

test('releaseDelivery: the store refusal is the console refusal (same status and code), nothing woken', (t) => {
  const { s, queries, wakes } = service();
  const unknown = t.throws(() => s.releaseDelivery(404, ADMIN), { instanceOf: ConsoleRefusal });
  t.like(unknown, { status: 404, code: 'DELIVERY_NOT_FOUND' });
  s.releaseDelivery(7, ADMIN);
  const twice = t.throws(() => s.releaseDelivery(7, ADMIN), { instanceOf: ConsoleRefusal });
  t.like(twice, { status: 409, code: 'DELIVERY_NOT_PARKED' });
  t.is(wakes(), 1);
  t.is(queries.calls.length, 3);
});

test('a refused action is audited as a failure with its code (the store audits only what it changed)', (t) => {
  const { s, audit } = service();
  t.throws(() => s.releaseDelivery(404, ADMIN), { instanceOf: ConsoleRefusal });
  t.throws(() => s.discardDelivery(7, '   ', ADMIN), { instanceOf: ConsoleRefusal });
  t.throws(() => s.reprocessStudy('9.9.9', ADMIN), { instanceOf: ConsoleRefusal });
  t.throws(() => s.releaseDestination('nowhere', ADMIN), { instanceOf: ConsoleRefusal });
  t.deepEqual(
    audit.entries.map((e) => [e.action, e.target, e.outcome, e.user, String(e.detail).split(':')[0]]),
    [
      ['delivery.release', 'delivery 404', 'failure', 'alice', 'DELIVERY_NOT_FOUND'],
      ['delivery.discard', 'delivery 7', 'failure', 'alice', 'REASON_REQUIRED'],
      ['study.reprocess', 'study 9.9.9', 'failure', 'alice', 'STUDY_NOT_FOUND'],
      ['delivery.release-destination', 'destination nowhere', 'failure', 'alice', 'DESTINATION_NOT_FOUND'],
    ],
  );
});

test('actions as a viewer are refused (403) before the store is asked', async (t) => {
  const { s, queries } = service();
  t.is(t.throws(() => s.releaseDelivery(7, VIEWER), { instanceOf: ConsoleRefusal })?.status, 403);
  t.is(t.throws(() => s.discardDelivery(7, 'dup', VIEWER), { instanceOf: ConsoleRefusal })?.status, 403);
  t.is(t.throws(() => s.reprocessStudy('1.2.3', VIEWER), { instanceOf: ConsoleRefusal })?.status, 403);
  t.is(t.throws(() => s.releaseDestination('ris-main', VIEWER), { instanceOf: ConsoleRefusal })?.status, 403);
  t.is((await t.throwsAsync(s.echoDestination('ris-main', VIEWER), { instanceOf: ConsoleRefusal }))?.status, 403);
  t.deepEqual(queries.calls, []);
});

test('releaseDestination: unknown (neither configured nor in the store) is 404; one only the store knows is fine', (t) => {
  const { s, queries } = service();
  t.like(
    t.throws(() => s.releaseDestination('nowhere', ADMIN), { instanceOf: ConsoleRefusal }),
    {
      status: 404,
      code: 'DESTINATION_NOT_FOUND',
    },
  );
  t.deepEqual(queries.calls, []);
  t.deepEqual(s.releaseDestination('ris-main', ADMIN), []);
  queries.activity = [
    {
      destination: 'old-ris',
      kind: 'ris',
      lastSuccessAt: null,
      lastFailureAt: 5,
      lastFailure: 'x',
      pending: 0,
      parked: 1,
    },
  ];
  s.releaseDestination('old-ris', ADMIN);
  t.deepEqual(queries.calls, ['release-destination ris-main', 'release-destination old-ris']);
});

test('discardDelivery: a reason is required (1..500 chars, trimmed) before the store is asked', (t) => {
  const { s, queries } = service();
  for (const reason of ['', '   ', 'x'.repeat(501)]) {
    t.like(
      t.throws(() => s.discardDelivery(7, reason, ADMIN), { instanceOf: ConsoleRefusal }),
      {
        status: 400,
        code: 'REASON_REQUIRED',
      },
    );
  }
  t.deepEqual(queries.calls, []);
  t.like(s.discardDelivery(7, '  sent by hand  ', ADMIN), { id: 7, lastError: 'discarded: sent by hand' });
  t.deepEqual(queries.calls, ['discard 7: sent by hand']);
  t.is(t.throws(() => s.discardDelivery(8, 'why', ADMIN), { instanceOf: ConsoleRefusal })?.status, 404);
});

/** A study with one job: a written image with a real SC file, a RIS delivery whose .hl7 file is real. */
function storyRows(dir: string): StudyRowsOut {
  const sc = writeSecondaryCapture({
    source: makeImageFile({ rows: 16, columns: 16 }).bytes,
    image: { rows: 4, columns: 6, data: new Uint8Array(4 * 6 * 3).fill(200) },
    model: MODEL,
    classification: CLASSIFICATION,
    explanation: EXPLANATION,
    revision: 0,
    createdAt: CREATED_AT,
  });
  const scPath = path.join(dir, 'sc.dcm');
  writeFileSync(scPath, sc.bytes);
  const hl7Path = path.join(dir, 'C1.hl7');
  writeFileSync(hl7Path, 'MSH|^~\\&|CXR_GATEWAY\rOBX|1|ST|x||abnormal');
  const result = writtenResult('1.2.3.1');
  if (result.kind !== 'written') throw new Error('fixture');
  result.outputs = [
    {
      kind: 'sc',
      path: scPath,
      sopClassUid: sc.sopClassUid,
      sopInstanceUid: sc.sopInstanceUid,
      seriesInstanceUid: sc.seriesInstanceUid,
    },
  ];
  const job = {
    id: 3,
    studyInstanceUid: '1.2.3',
    revision: 0,
    state: 'parked' as const,
    rule: 'all',
    action: JSON.stringify({
      model: 'demo',
      outputs: ['sc'],
      pacs: ['pacs-folder'],
      ris: ['ris-main'],
      priority: 'normal',
    }),
    priority: 'normal' as const,
    instanceCount: 1,
    attempts: 1,
    lastError: 'a delivery was parked: see cxr-gateway jobs',
    createdAt: NOW - 5000,
    updatedAt: NOW - 1000,
    finishedAt: null,
    callingAe: 'DX1',
    accessionNumber: 'ACC1',
    deliveries: { pending: 0, delivered: 1, parked: 1 },
    images: [
      {
        sopInstanceUid: '1.2.3.1',
        path: '/in/1.dcm',
        state: 'written' as const,
        reason: null,
        result: JSON.stringify(result),
      },
      { sopInstanceUid: '1.2.3.2', path: '/in/2.dcm', state: 'written' as const, reason: null, result: '{"broken":' },
    ],
    deliveries_: undefined,
  };
  const { deliveries_: _unused, ...jobRow } = job;
  return {
    study: {
      studyInstanceUid: '1.2.3',
      state: 'ready',
      revision: 0,
      instanceCount: 2,
      firstReceivedAt: NOW - 9000,
      lastReceivedAt: NOW - 8000,
      callingAe: 'DX1',
      accessionNumber: 'ACC1',
      modality: 'DX',
      studyDate: '20261206',
    },
    instances: [
      {
        sopInstanceUid: '1.2.3.1',
        sopClassUid: '1.2.840.10008.5.1.4.1.1.1.1',
        seriesInstanceUid: '1.2.3.9',
        path: '/in/1.dcm',
        callingAe: 'DX1',
        calledAe: 'CXR_GATEWAY',
        sourceIp: '10.1.1.1',
        receivedAt: NOW - 9000,
        attributes: JSON.stringify({ modality: 'DX', viewPosition: 'PA' }),
      },
      {
        sopInstanceUid: '1.2.3.2',
        sopClassUid: '1.2.840.10008.5.1.4.1.1.1.1',
        seriesInstanceUid: '1.2.3.9',
        path: '/in/2.dcm',
        callingAe: 'DX1',
        calledAe: 'CXR_GATEWAY',
        sourceIp: '10.1.1.1',
        receivedAt: NOW - 8000,
        attributes: 'not json',
      },
    ],
    jobs: [
      {
        ...jobRow,
        // The seam's StudyRowsOut intersects JobRowOut's `deliveries` (counts) with the list: no value has both
        // types, so the list is cast (reported to the lead).
        deliveries: [
          {
            ...delivery({ payload: JSON.stringify({ kind: 'ris', file: hl7Path, controlId: 'C1' }) }),
            history: [
              { deliveryId: 7, attempt: 1, at: NOW - 2000, outcome: 'parked', detail: 'hl7-application-reject: AR' },
            ],
          },
          {
            ...delivery({
              id: 8,
              destination: 'ris-2',
              payload: JSON.stringify({ kind: 'ris', file: path.join(dir, 'gone.hl7'), controlId: 'C2' }),
            }),
            history: [],
          },
        ] as unknown as StudyRowsOut['jobs'][number]['deliveries'],
      },
    ],
  };
}

test('study: the whole story (routing, classes, outputs, HL7 text, attempts); damaged rows show as text', (t) => {
  const { s, queries } = service();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'console-story-'));
  queries.rows.set('1.2.3', storyRows(dir));
  const story = s.study('1.2.3');
  t.like(story.images[0], { viewPosition: 'PA', modality: 'DX' });
  t.like(story.images[1], { sopInstanceUid: '1.2.3.2', viewPosition: null, modality: null });
  const job = story.jobs[0];
  t.deepEqual(job?.routing, {
    rule: 'all',
    model: 'demo',
    outputs: ['sc'],
    pacs: ['pacs-folder'],
    ris: ['ris-main'],
    priority: 'normal',
  });
  t.like(job?.images[0], {
    state: 'written',
    classification: { predicted: 'abnormal', classes: ['normal', 'abnormal'] },
    overlayAvailable: true,
  });
  t.is(job?.images[0]?.outputs[0]?.kind, 'sc');
  t.is(job?.images[1]?.classification, null);
  t.regex(job?.images[1]?.reason ?? '', /job_images\.result/);
  t.deepEqual(job?.hl7[0], {
    destination: 'ris-main',
    controlId: 'C1',
    text: 'MSH|^~\\&|CXR_GATEWAY\rOBX|1|ST|x||abnormal',
  });
  t.regex(job?.hl7[1]?.text ?? '', /no longer in the spool: deleted by retention/);
  t.like(job?.deliveries[0]?.history[0], { outcome: 'parked', detail: 'hl7-application-reject: AR' });
  t.false('payload' in (job?.deliveries[0] ?? {}));
  t.like(
    t.throws(() => s.study('9.9'), { instanceOf: ConsoleRefusal }),
    { status: 404, code: 'STUDY_NOT_FOUND' },
  );
});

test('study: a damaged jobs.action is told in the job, not a failed page', (t) => {
  const { s, queries } = service();
  const rows = storyRows(mkdtempSync(path.join(os.tmpdir(), 'console-story-')));
  const job = rows.jobs[0];
  if (job === undefined) throw new Error('fixture');
  job.action = '{"model": 5}';
  queries.rows.set('1.2.3', rows);
  const story = s.study('1.2.3');
  t.is(story.jobs[0]?.routing, null);
  t.regex(story.jobs[0]?.lastError ?? '', /a delivery was parked.*; .*jobs\.action/);
});

test('overlayPng: the written SC as PNG; unknown job, image, or a file gone are 404', async (t) => {
  const { s, queries } = service();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'console-overlay-'));
  queries.rows.set('1.2.3', storyRows(dir));
  // Without a study page seen first: found by paging through the jobs.
  const png = await s.overlayPng(3, '1.2.3.1');
  t.is(png.readUInt32BE(16), 6);
  t.is(png.readUInt32BE(20), 4);
  t.like(await t.throwsAsync(s.overlayPng(4, '1.2.3.1'), { instanceOf: ConsoleRefusal }), {
    status: 404,
    code: 'JOB_NOT_FOUND',
  });
  t.like(await t.throwsAsync(s.overlayPng(3, '7.7'), { instanceOf: ConsoleRefusal }), {
    status: 404,
    code: 'IMAGE_NOT_FOUND',
  });
  unlinkSync(path.join(dir, 'sc.dcm'));
  t.like(await t.throwsAsync(s.overlayPng(3, '1.2.3.1'), { instanceOf: ConsoleRefusal }), {
    status: 404,
    code: 'OVERLAY_MISSING',
  });
});

test('reprocessStudy: a new revision through the store and a wake-up; unknown study 404 without one', (t) => {
  const { s, queries, wakes } = service();
  t.like(
    t.throws(() => s.reprocessStudy('1.2.3', ADMIN), { instanceOf: ConsoleRefusal }),
    { status: 404 },
  );
  t.is(wakes(), 0);
  queries.rows.set('1.2.3', storyRows(mkdtempSync(path.join(os.tmpdir(), 'console-'))));
  t.deepEqual(s.reprocessStudy('1.2.3', ADMIN), { jobId: 99, revision: 1 });
  t.is(wakes(), 1);
});

test('echoDestination: probes the configured destination and records the outcome in the audit trail', async (t) => {
  const probed: string[] = [];
  const { s, audit } = service({
    probe: async (d, calling) => (
      probed.push(`${d.kind}:${d.name} as ${calling}`),
      { destination: d.name, ok: false, ms: 3, detail: 'connection refused' }
    ),
  });
  const result = await s.echoDestination('ris-main', ADMIN);
  t.deepEqual(result, { destination: 'ris-main', ok: false, ms: 3, detail: 'connection refused' });
  t.deepEqual(probed, ['ris:ris-main as CXR_GATEWAY']);
  t.like(audit.entries[0], {
    action: 'destination.echo',
    user: 'alice',
    address: '10.0.0.5',
    target: 'destination ris-main',
    outcome: 'failure',
    detail: 'connection refused',
  });
  t.like(await t.throwsAsync(s.echoDestination('nope', ADMIN), { instanceOf: ConsoleRefusal }), { status: 404 });
  t.is(audit.entries.length, 1);
});

test('dashboard and health: throughput, queue, parked, models, disk; destinations with their activity', (t) => {
  const { s, queries } = service();
  queries.activity = [
    {
      destination: 'ris-main',
      kind: 'ris',
      lastSuccessAt: 1,
      lastFailureAt: 2,
      lastFailure: 'AR',
      pending: 0,
      parked: 1,
    },
    {
      destination: 'removed',
      kind: 'pacs',
      lastSuccessAt: 1,
      lastFailureAt: null,
      lastFailure: null,
      pending: 2,
      parked: 0,
    },
  ];
  const d = s.dashboard();
  t.deepEqual(d.throughput, { receivedLastHour: 2, receivedLast24h: 30, finishedLastHour: 1, finishedLast24h: 25 });
  t.is(d.parked, 1);
  t.deepEqual(d.models, [{ name: 'demo', backend: 'wasm', loaded: true, workers: 2 }]);
  t.deepEqual(d.disk, { freeBytes: 5e9, minFreeBytes: 1024 * 1048576 });
  t.like(d, { status: 'ok', version: '1.2.3', startedAt: NOW - 60_000 });
  const h = s.health();
  t.deepEqual(
    h.destinations.map((x) => [x.name, x.transport, x.parked, x.pending]),
    [
      ['pacs-folder', 'folder', 0, 0],
      ['ris-main', 'mllp', 1, 0],
      ['removed', 'not configured', 0, 2],
    ],
  );
});

test('paging is checked: a limit outside 1..500 or a negative offset is a 400', (t) => {
  const { s } = service();
  t.is(t.throws(() => s.jobs({ offset: 0, limit: 0 }), { instanceOf: ConsoleRefusal })?.status, 400);
  t.is(t.throws(() => s.deliveries({ offset: -1, limit: 5 }), { instanceOf: ConsoleRefusal })?.status, 400);
  t.is(t.throws(() => s.studies({ offset: 0, limit: 501 }), { instanceOf: ConsoleRefusal })?.status, 400);
  t.is(s.deliveries({ offset: 0, limit: 10, state: 'parked' }).total, 1);
});

test('runningConfig: source, restart-needed keys, what differs on disk, last reload', (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'console-config-'));
  const file = path.join(dir, 'cxr.yaml');
  const text = 'models: { demo: /models/demo }\nrules: []\ndestinations: { pacs: [], ris: [] }\n';
  writeFileSync(file, text);
  const running = loadConfig(file).config;
  const last: ReloadRecord = { at: NOW, ok: false, trigger: 'SIGHUP', error: 'bad' };
  const { s } = service({ configPath: file, config: () => running, lastReload: () => last });
  const c = s.runningConfig();
  t.is(c.source, file);
  t.true(c.restartNeededKeys.includes('dicom'));
  t.deepEqual(c.pendingRestart, []);
  t.deepEqual(c.lastReload, last);
  writeFileSync(file, `${text}dicom: { port: 11113 }\n`);
  t.deepEqual(s.runningConfig().pendingRestart, ['dicom']);
});

test('applyRules: written, reloaded with the console as trigger, audited with before and after', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'console-apply-'));
  const file = path.join(dir, 'cxr.yaml');
  writeFileSync(
    file,
    '# site\nmodels: { demo: /models/demo }\ndestinations:\n  pacs: [{ type: folder, name: pacs-folder, path: out }]\n  ris: []\nrules: []\n',
  );
  const { s, audit, reloads, setConfig } = service({ configPath: file });
  setConfig(loadConfig(file).config);
  const candidate = [
    { name: 'dx', match: { attributes: { Modality: 'DX' } }, action: { model: 'demo', pacs: ['pacs-folder'] } },
  ];
  const applied = await s.applyRules(candidate, ADMIN);
  t.is(applied.rules, 1);
  t.true(readFileSync(file, 'utf8').startsWith('# site\n'));
  t.is(reloads[0]?.trigger, 'console (alice)');
  t.deepEqual(
    reloads[0]?.next.rules.map((r) => r.name),
    ['dx'],
  );
  t.like(audit.entries[0], { action: 'rules.apply', outcome: 'success', user: 'alice', before: [], after: candidate });
  // Invalid: refused, audited as a failure, the file as it was.
  const before = readFileSync(file);
  const refused = await t.throwsAsync(s.applyRules([{ name: 'x', action: { model: 'demo', pacs: ['nope'] } }], ADMIN), {
    instanceOf: ConsoleRefusal,
  });
  t.is(refused?.status, 422);
  t.deepEqual(readFileSync(file), before);
  t.like(audit.entries[1], { action: 'rules.apply', outcome: 'failure' });
  t.is(reloads.length, 1);
  // The audit page parses what the trail stored.
  const page = s.audit({ offset: 0, limit: 10 });
  t.deepEqual(page.items[0]?.after, candidate);
});

test('drainNode: an admin drains a registered node and undoes it, each audited; unknown or no registry is 404; a viewer 403', (t) => {
  const store = JobStore.open(path.join(mkdtempSync(path.join(os.tmpdir(), 'console-drain-')), 'jobs.sqlite'));
  t.teardown(() => store.close());
  const nodes = new NodeRegistry(store.connection);
  nodes.register('gw-2', ['analyze'], NOW - 1000);
  const { s, audit } = service({ nodes });
  t.deepEqual(s.drainNode('gw-2', true, ADMIN), { node: 'gw-2', draining: true, holds: { jobs: 0, deliveries: 0 } });
  t.like(nodes.list(), [{ name: 'gw-2', draining: true }]);
  t.like(audit.entries.at(-1), {
    action: 'node.drain',
    user: 'alice',
    role: 'admin',
    target: 'gw-2',
    outcome: 'success',
    after: { draining: true },
  });
  t.like(s.drainNode('gw-2', false, ADMIN), { draining: false });
  t.like(nodes.list(), [{ name: 'gw-2', draining: false }]);
  t.like(audit.entries.at(-1), { action: 'node.undrain', outcome: 'success' });

  const unknown = t.throws(() => s.drainNode('gw-9', true, ADMIN), { instanceOf: ConsoleRefusal });
  t.like(unknown, { status: 404, code: 'NODE_UNKNOWN' });
  t.like(audit.entries.at(-1), { action: 'node.drain', target: 'gw-9', outcome: 'failure' });
  t.is(t.throws(() => s.drainNode('gw-2', true, VIEWER), { instanceOf: ConsoleRefusal })?.status, 403);
  t.like(nodes.list(), [{ name: 'gw-2', draining: false }], 'nothing changed');
  t.is(t.throws(() => service().s.drainNode('gw-2', true, ADMIN), { instanceOf: ConsoleRefusal })?.status, 404);
});
