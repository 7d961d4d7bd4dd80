// Two deliver nodes on one store (issue 20), each a Pipeline with its own connection, node name and scripted PACS,
// on SQLite (two connections to one file) and on PostgreSQL: a destination's delivery is never sent by both at once;
// a node that stops renewing its lease loses the delivery to the other, and its late outcome is not recorded.
import test from 'ava';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { configSchema } from '../../src/config/schema.js';
import type { DeliveryOutcome, DeliveryTarget } from '../../src/export/delivery-target.js';
import { createLogger } from '../../src/logging/logger.js';
import { Pipeline } from '../../src/pipeline/pipeline.js';
import { JobStore } from '../../src/store/job-store.js';
import { PipelineStore } from '../../src/store/pipeline-store.js';
import { queueDeliveryJob } from '../helpers/pipeline-harness.js';
import { startPostgres, type PostgresUnderTest } from '../helpers/postgres.js';
import { twoNodeStores } from '../helpers/two-node-stores.js';

let cluster: PostgresUnderTest;
test.before(async () => {
  cluster = await startPostgres();
});
test.after.always(async () => {
  await cluster?.stop();
});

const START = Date.parse('2026-01-05T08:00:00Z');
const LEASE_SECONDS = 3000;

const engines = twoNodeStores(() => cluster, 'cluster-deliveries-');

/** A PACS whose every delivery starts (counted) and waits until the test finishes it. */
function gatedPacs() {
  const waiting: Array<(o: DeliveryOutcome) => void> = [];
  const started: Array<() => void> = [];
  let count = 0;
  const target: DeliveryTarget = {
    name: 'pacs',
    kind: 'pacs',
    deliver: () =>
      new Promise<DeliveryOutcome>((resolve) => {
        count += 1;
        waiting.push(resolve);
        started.shift()?.();
      }),
  };
  return {
    target,
    get count() {
      return count;
    },
    /** Resolves when the next delivery starts. */
    nextStart: () => new Promise<void>((resolve) => started.push(resolve)),
    finish: (o: DeliveryOutcome) => waiting.shift()?.(o),
  };
}

function node(
  store: JobStore,
  name: string,
  pacs: DeliveryTarget,
  clock: { now: number },
  dir: string,
  roles: string[] = ['deliver'],
) {
  const logs: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString().split('\n'))
        if (line.trim() !== '') logs.push(JSON.parse(line) as Record<string, unknown>);
      callback();
    },
  });
  const pipeline = new Pipeline({
    // A heartbeat never comes by itself here: the test says when each node beats.
    config: configSchema.parse({
      cluster: { nodeName: name, roles, leaseSeconds: LEASE_SECONDS, heartbeatSeconds: 1000 },
    }),
    store,
    pipelineStore: new PipelineStore(store.connection),
    models: new Map(),
    targets: new Map([['pacs', pacs]]),
    outputsDir: dir,
    logger: createLogger({ level: 'info', format: 'json', stream }),
    now: () => clock.now,
    random: () => 0.5,
  });
  return { pipeline, logs };
}

for (const [engine, open] of Object.entries(engines)) {
  test(`${engine}: one destination's delivery is sent by one node; after its lease the other takes it over and the late outcome is dropped`, async (t) => {
    const [storeA, storeB] = await open(t);
    const dir = mkdtempSync(path.join(os.tmpdir(), 'cluster-deliveries-out-'));
    const clock = { now: START };
    const reader = new PipelineStore(storeA.connection);
    const jobId = queueDeliveryJob(storeA, reader, { studyInstanceUid: '1.2.3', dir, clock: START, pacs: ['pacs'] });
    const pacsA = gatedPacs();
    const pacsB = gatedPacs();
    const a = node(storeA, 'node-a', pacsA.target, clock, dir);
    const b = node(storeB, 'node-b', pacsB.target, clock, dir);
    t.teardown(async () => {
      pacsA.finish({ kind: 'retry', cause: 'stopped', reason: 'test over' });
      pacsB.finish({ kind: 'retry', cause: 'stopped', reason: 'test over' });
      await Promise.all([a.pipeline.stop(), b.pipeline.stop()]);
    });

    const startedOnA = pacsA.nextStart();
    await a.pipeline.start();
    await startedOnA;
    t.like(reader.deliveries(jobId)[0], { state: 'pending', leaseOwner: 'node-a' });
    await b.pipeline.start();
    await b.pipeline.deliverDueNow();
    t.is(pacsB.count, 0, 'node b does not send what node a is sending');

    // A heartbeat keeps node a's lease past the first lease time.
    clock.now = START + (LEASE_SECONDS - 1) * 1000;
    a.pipeline.heartbeat();
    clock.now = START + LEASE_SECONDS * 1000;
    await b.pipeline.deliverDueNow();
    t.is(pacsB.count, 0, 'renewed: still node a');

    // Node a stops beating (hung on its PACS): once its lease runs out node b takes the delivery over.
    clock.now = START + (2 * LEASE_SECONDS - 1) * 1000 + 1000;
    const startedOnB = pacsB.nextStart();
    const takeover = b.pipeline.deliverDueNow();
    await startedOnB;
    t.like(reader.deliveries(jobId)[0], { leaseOwner: 'node-b' });
    pacsB.finish({ kind: 'delivered' });
    await takeover;
    t.like(reader.deliveries(jobId)[0], { state: 'delivered', attempts: 1, leaseOwner: null });

    // Node a's PACS answers at last: that outcome is not recorded (the delivery stays delivered, one attempt).
    pacsA.finish({ kind: 'retry', cause: 'association-rejected', reason: 'late' });
    await a.pipeline.stop();
    t.like(reader.deliveries(jobId)[0], { state: 'delivered', attempts: 1 });
    const lost = a.logs.find((l) => l.event === 'PIPELINE-4012');
    t.like(lost, { node: 'node-a', deliveryId: reader.deliveries(jobId)[0]?.id }, 'node a says it lost the lease');
    t.regex(String(lost?.why), /node 'node-a' no longer holds the lease on delivery \d+/);
    t.like(storeA.listJobs()[0], { state: 'done' });
  });
}

test('a node without the deliver role claims no delivery; one with it sends it', async (t) => {
  const [store] = await engines.sqlite(t);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'cluster-deliveries-out-'));
  const clock = { now: START };
  const reader = new PipelineStore(store.connection);
  const jobId = queueDeliveryJob(store, reader, { studyInstanceUid: '1.2.4', dir, clock: START, pacs: ['pacs'] });
  const pacs = gatedPacs();
  const analysis = node(store, 'gw-analysis', pacs.target, clock, dir, ['receive', 'analyze']);
  t.teardown(() => analysis.pipeline.stop());
  await analysis.pipeline.start();
  await analysis.pipeline.deliverDueNow();
  t.is(pacs.count, 0);
  t.like(reader.deliveries(jobId)[0], { state: 'pending', leaseOwner: null });
  const deliver = node(store, 'gw-deliver', pacs.target, clock, dir, ['deliver']);
  t.teardown(() => deliver.pipeline.stop());
  const started = pacs.nextStart();
  await deliver.pipeline.start();
  await started;
  pacs.finish({ kind: 'delivered' });
  await deliver.pipeline.deliverDueNow();
  t.like(reader.deliveries(jobId)[0], { state: 'delivered', attempts: 1 });
});
