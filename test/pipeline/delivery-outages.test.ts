import test from 'ava';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { AdminServer } from '../../src/admin/admin-server.js';
import { configSchema, type GatewayConfig } from '../../src/config/schema.js';
import { createLogger } from '../../src/logging/logger.js';
import type { DeliveryOutcome, DeliveryPayload, DeliveryTarget } from '../../src/export/delivery-target.js';
import { Pipeline } from '../../src/pipeline/pipeline.js';
import { JobStore } from '../../src/store/job-store.js';
import { PipelineStore, type Delivery } from '../../src/store/pipeline-store.js';
import { StoreMetrics } from '../../src/store/store-metrics.js';
import { queueDeliveryJob } from '../helpers/pipeline-harness.js';

// The delivery scheduler against scripted destinations, with an injected clock: hours of outage and hundreds of
// retries run in milliseconds, and nothing here waits to prove that something did not happen.

const START = Date.parse('2026-01-05T08:00:00Z');
const MINUTE = 60_000;

type Script = (payload: DeliveryPayload, now: number) => DeliveryOutcome;

interface Harness {
  readonly now: number;
  setClock(ms: number): void;
  store: JobStore;
  pipelineStore: PipelineStore;
  pipeline: Pipeline;
  logs: Array<Record<string, unknown>>;
  calls: Array<{ destination: string; at: number }>;
  target(name: string, kind: 'pacs' | 'ris', script: Script): DeliveryTarget;
  queueJob(destinations: { pacs?: string[]; ris?: string[] }): number;
  deliveries(jobId: number): Delivery[];
  /** Delivery passes, moving the clock to each next due time, until `done` or `maxPasses`. */
  runUntil(done: () => boolean, maxPasses?: number): Promise<void>;
  /** Delivery passes at each due time up to `ms`, then the clock at `ms`. */
  advanceTo(ms: number): Promise<void>;
}

let uid = 0;

function harness(
  t: { teardown(fn: () => unknown): void },
  raw: Record<string, unknown>,
  targets: (h: Harness) => DeliveryTarget[],
): Harness {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'delivery-outages-'));
  const store = JobStore.open(path.join(dir, 'db.sqlite'));
  const pipelineStore = new PipelineStore(store.connection);
  let clock = START;
  const logs: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString().split('\n'))
        if (line.trim() !== '') logs.push(JSON.parse(line) as Record<string, unknown>);
      callback();
    },
  });
  const logger = createLogger({ level: 'info', format: 'json', stream });
  const config: GatewayConfig = configSchema.parse(raw);
  const calls: Array<{ destination: string; at: number }> = [];
  // The next time a pass can do something: a pending delivery held back behind another (a RIS report behind its
  // PACS delivery) is already past its own time, so the next one in the future is what matters.
  const nextDue = (): number | undefined => {
    const times = pipelineStore
      .deliveries()
      .filter((d) => d.state === 'pending' && d.nextAttemptAt > clock)
      .map((d) => d.nextAttemptAt);
    return times.length === 0 ? undefined : Math.min(...times);
  };
  const h = {
    get now() {
      return clock;
    },
    setClock: (ms: number) => (clock = ms),
    store,
    pipelineStore,
    logs,
    calls,
    target(name: string, kind: 'pacs' | 'ris', script: Script): DeliveryTarget {
      return {
        name,
        kind,
        deliver: async (payload) => {
          calls.push({ destination: name, at: clock });
          return script(payload, clock);
        },
      };
    },
    queueJob(destinations: { pacs?: string[]; ris?: string[] }): number {
      return queueDeliveryJob(store, pipelineStore, {
        studyInstanceUid: `1.2.826.0.1.${(uid += 1)}`,
        dir,
        clock,
        ...destinations,
      });
    },
    deliveries: (jobId: number) => pipelineStore.deliveries(jobId),
    async runUntil(done: () => boolean, maxPasses = 2_000): Promise<void> {
      for (let i = 0; i < maxPasses && !done(); i += 1) {
        await h.pipeline.deliverDueNow();
        if (done()) return;
        const next = nextDue();
        if (next === undefined) return;
        clock = next;
      }
    },
    async advanceTo(ms: number): Promise<void> {
      for (;;) {
        await h.pipeline.deliverDueNow();
        const next = nextDue();
        if (next === undefined || next > ms) break;
        clock = next;
      }
      clock = ms;
    },
  } as unknown as Harness;
  h.pipeline = new Pipeline({
    config,
    store,
    pipelineStore,
    models: new Map(),
    targets: new Map(targets(h).map((target) => [target.name, target])),
    outputsDir: dir,
    logger,
    now: () => clock,
    random: () => 0.5,
  });
  h.pipeline.start();
  t.teardown(async () => {
    await h.pipeline.stop();
    store.close();
  });
  return h;
}

const refused: DeliveryOutcome = {
  kind: 'retry',
  cause: 'connection-refused',
  reason: 'connection refused by 127.0.0.1:104 (ECONNREFUSED): the PACS is not listening there',
};

test('defaults: a PACS down for 3 hours (the old policy parked after about an hour) is delivered when it returns, then the RIS; never parked', async (t) => {
  const upAt = START + 3 * 60 * MINUTE;
  const h = harness(t, {}, (h) => [
    h.target('pacs', 'pacs', (_p, now) => (now < upAt ? refused : { kind: 'delivered' })),
    h.target('ris', 'ris', () => ({ kind: 'delivered' })),
  ]);
  const jobId = h.queueJob({ pacs: ['pacs'], ris: ['ris'] });
  await h.runUntil(() => h.deliveries(jobId).every((d) => d.state !== 'pending'));
  const [pacs, ris] = h.deliveries(jobId);
  t.like(pacs, { state: 'delivered' });
  t.like(ris, { state: 'delivered', attempts: 1 });
  // More attempts than the old delivery.maxAttempts (12) allowed, none of them parking it.
  t.true((pacs?.attempts ?? 0) > 12, `attempts: ${pacs?.attempts}`);
  t.false(h.logs.some((l) => l.event === 'EXPORT-6004'));
  // Backoff capped at maxBackoffSeconds (900 s): the return is noticed within 15 minutes.
  const delivered = h.calls.filter((c) => c.destination === 'pacs').at(-1)?.at ?? 0;
  t.true(
    delivered >= upAt && delivered <= upAt + 15 * MINUTE,
    `delivered ${(delivered - upAt) / 1000} s after the PACS came back`,
  );
  const gaps = h.calls
    .filter((c) => c.destination === 'pacs')
    .map((c, i, all) => (i === 0 ? 0 : c.at - (all[i - 1]?.at ?? 0)));
  t.true(Math.max(...gaps) <= 900_000);
  // Each failure is logged with its stable cause code and class, and the store keeps `cause: reason`.
  const failure = h.logs.find((l) => l.event === 'EXPORT-6003');
  t.like(failure, { level: 'warn', cause: 'connection-refused', failure: 'transient', destination: 'pacs', jobId });
  t.is(h.pipeline.deliveryTroubles().length, 0);
});

test('the store keeps the cause code first in last_error while a delivery waits', async (t) => {
  const h = harness(t, {}, (h) => [h.target('pacs', 'pacs', () => refused)]);
  const jobId = h.queueJob({ pacs: ['pacs'] });
  await h.runUntil(() => (h.deliveries(jobId)[0]?.attempts ?? 0) >= 3);
  t.like(h.deliveries(jobId)[0], { state: 'pending', attempts: 3 });
  t.regex(
    h.deliveries(jobId)[0]?.lastError ?? '',
    /^connection-refused: connection refused by 127\.0\.0\.1:104 \(ECONNREFUSED\)/,
  );
});

test('a permanent refusal parks at once, with its cause; the RIS report of that job is held back', async (t) => {
  const h = harness(t, {}, (h) => [
    h.target('pacs', 'pacs', () => ({
      kind: 'parked',
      cause: 'pacs-refused-object',
      reason: '1.2.3: 0xA900 data set does not match SOP class',
    })),
    h.target('ris', 'ris', () => ({ kind: 'delivered' })),
  ]);
  const jobId = h.queueJob({ pacs: ['pacs'], ris: ['ris'] });
  await h.runUntil(() => h.deliveries(jobId).every((d) => d.state !== 'pending'));
  const [pacs, ris] = h.deliveries(jobId);
  t.like(pacs, {
    state: 'parked',
    attempts: 1,
    lastError: 'pacs-refused-object: 1.2.3: 0xA900 data set does not match SOP class',
  });
  t.like(ris, { state: 'parked' });
  t.like(
    h.logs.find((l) => l.event === 'EXPORT-6004'),
    { level: 'error', cause: 'pacs-refused-object', failure: 'permanent' },
  );
  t.is(h.calls.filter((c) => c.destination === 'ris').length, 0);
});

test('a RIS application reject parks; an AE that may clear is retried and delivered', async (t) => {
  let aeLeft = 4;
  const h = harness(t, {}, (h) => [
    h.target('ris-ar', 'ris', () => ({
      kind: 'parked',
      cause: 'application-reject',
      reason: 'the RIS answered AR (application reject)',
    })),
    h.target('ris-ae', 'ris', () =>
      aeLeft-- > 0
        ? {
            kind: 'retry',
            cause: 'application-error',
            reason: 'the RIS answered AE (application error) (error code 207)',
          }
        : { kind: 'delivered' },
    ),
  ]);
  const ar = h.queueJob({ ris: ['ris-ar'] });
  const ae = h.queueJob({ ris: ['ris-ae'] });
  await h.runUntil(() => [...h.deliveries(ar), ...h.deliveries(ae)].every((d) => d.state !== 'pending'));
  t.like(h.deliveries(ar)[0], { state: 'parked', attempts: 1 });
  t.like(h.deliveries(ae)[0], { state: 'delivered', attempts: 5 });
});

test('failures of unknown class still park after delivery.maxAttempts, saying so', async (t) => {
  const h = harness(t, { delivery: { maxAttempts: 3 } }, (h) => [
    h.target('pacs', 'pacs', () => ({ kind: 'retry', cause: 'pacs-failure', reason: '0x0301 failure' })),
  ]);
  const jobId = h.queueJob({ pacs: ['pacs'] });
  await h.runUntil(() => h.deliveries(jobId)[0]?.state !== 'pending');
  t.like(h.deliveries(jobId)[0], { state: 'parked', attempts: 3 });
  t.regex(
    h.deliveries(jobId)[0]?.lastError ?? '',
    /^pacs-failure: 0x0301 failure; gave up after 3 failed attempts \(the retry policy allows 3\)$/,
  );
});

test('delivery.transientMaxAttempts bounds transient retries when a site wants that', async (t) => {
  const h = harness(t, { delivery: { transientMaxAttempts: 4 } }, (h) => [h.target('pacs', 'pacs', () => refused)]);
  const jobId = h.queueJob({ pacs: ['pacs'] });
  await h.runUntil(() => h.deliveries(jobId)[0]?.state !== 'pending');
  t.like(h.deliveries(jobId)[0], { state: 'parked', attempts: 4 });
  t.regex(h.deliveries(jobId)[0]?.lastError ?? '', /allows 4 for transient failures/);
});

test('a delivery whose destination is not live waits (visible), and goes out once the destination is added', async (t) => {
  const h = harness(t, {}, () => []);
  const jobId = h.queueJob({ pacs: ['new-pacs'] });
  await h.runUntil(() => (h.deliveries(jobId)[0]?.attempts ?? 0) >= 20);
  const waiting = h.deliveries(jobId)[0];
  t.like(waiting, { state: 'pending', attempts: 20 });
  t.regex(
    waiting?.lastError ?? '',
    /^destination-not-configured: destination 'new-pacs' is not configured; the delivery waits/,
  );
  // Waiting for a destination looks again at least once a minute, whatever the backoff has grown to.
  t.true((waiting?.nextAttemptAt ?? 0) - h.now <= MINUTE);
  t.like(h.pipeline.deliveryTroubles()[0], {
    destination: 'new-pacs',
    failing: 1,
    cause: 'destination-not-configured',
  });

  const config = configSchema.parse({});
  h.pipeline.updateConfig(config, new Map([['new-pacs', h.target('new-pacs', 'pacs', () => ({ kind: 'delivered' }))]]));
  await h.runUntil(() => h.deliveries(jobId)[0]?.state !== 'pending');
  t.like(h.deliveries(jobId)[0], { state: 'delivered', attempts: 21 });
  t.false(h.logs.some((l) => l.event === 'EXPORT-6004'));
  t.deepEqual(h.pipeline.deliveryTroubles(), []);
});

test('/healthz turns degraded with the reason once deliveries fail longer than delivery.alertAfterMinutes, and ok again when they go out; /metrics shows them', async (t) => {
  const upAt = START + 50 * MINUTE;
  const h = harness(t, { delivery: { alertAfterMinutes: 30 } }, (h) => [
    h.target('pacs', 'pacs', (_p, now) => (now < upAt ? refused : { kind: 'delivered' })),
  ]);
  const admin = new AdminServer({
    host: '127.0.0.1',
    port: 0,
    metrics: new StoreMetrics(h.store.connection),
    logger: createLogger({ level: 'error', format: 'json', stream: new Writable({ write: (_c, _e, cb) => cb() }) }),
    health: {
      storeOk: () => true,
      freeDiskBytes: () => 10 * 1024 ** 3,
      minFreeDiskBytes: 1024 ** 3,
      models: () => [{ name: 'demo', loaded: true, backend: 'wasm', workers: 2, wantedWorkers: 2 }],
      dicomListening: () => true,
      deliveries: () => h.pipeline.deliveryTroubles(),
      alertAfterSeconds: () => 30 * 60,
    },
  });
  const address = await admin.start();
  t.teardown(() => admin.stop());
  const get = async (what: string) => {
    const response = await fetch(`http://127.0.0.1:${address.port}${what}`);
    return { status: response.status, text: await response.text() };
  };
  const jobId = h.queueJob({ pacs: ['pacs'] });

  await h.advanceTo(START + 20 * MINUTE);
  let health = await get('/healthz');
  t.is(health.status, 200, health.text);
  t.regex((await get('/metrics')).text, /^cxr_deliveries_retrying\{destination="pacs"\} 1$/m);

  await h.advanceTo(START + 31 * MINUTE);
  health = await get('/healthz');
  t.is(health.status, 503);
  const body = JSON.parse(health.text) as { status: string; problems: string[] };
  t.is(body.status, 'degraded');
  t.deepEqual(body.problems.length, 1);
  t.regex(
    body.problems[0] ?? '',
    /^deliveries to 'pacs' have been failing for 3\d min \(1 waiting, last cause connection-refused\)/,
  );
  const seconds = Number(
    /^cxr_delivery_oldest_failing_seconds\{destination="pacs"\} (\d+)$/m.exec((await get('/metrics')).text)?.[1],
  );
  t.true(seconds >= 30 * 60, `${seconds}`);

  await h.runUntil(() => h.deliveries(jobId)[0]?.state === 'delivered');
  // The log said so once, at error, when the threshold was crossed (not on every retry after it).
  const announced = h.logs.filter((l) => l.event === 'EXPORT-6005');
  t.is(announced.length, 1);
  t.like(announced[0], { level: 'error', destination: 'pacs', cause: 'connection-refused', alertAfterMinutes: 30 });
  health = await get('/healthz');
  t.is(health.status, 200, health.text);
  t.notRegex((await get('/metrics')).text, /cxr_deliveries_retrying\{/);
});

test('/healthz is degraded when a model runs fewer live workers than wanted, or none', (t) => {
  const base = {
    storeOk: () => true,
    freeDiskBytes: () => 10 * 1024 ** 3,
    minFreeDiskBytes: 1024 ** 3,
    dicomListening: () => true,
  };
  const logger = createLogger({
    level: 'error',
    format: 'json',
    stream: new Writable({ write: (_c, _e, cb) => cb() }),
  });
  const healthOf = (workers: number, wantedWorkers?: number) =>
    new AdminServer({
      host: '127.0.0.1',
      port: 0,
      metrics: undefined as never,
      logger,
      health: {
        ...base,
        models: () => [
          {
            name: 'demo',
            loaded: true,
            backend: 'wasm',
            workers,
            ...(wantedWorkers === undefined ? {} : { wantedWorkers }),
          },
        ],
      },
    }).health();
  t.like(healthOf(2, 2), { status: 'ok', problems: [] });
  t.like(healthOf(2), { status: 'ok' });
  t.deepEqual(healthOf(1, 2).problems, ["model 'demo' runs 1 of 2 inference workers: results come slower"]);
  t.deepEqual(healthOf(0).problems, ["model 'demo' has no live inference worker: its studies wait"]);
});
