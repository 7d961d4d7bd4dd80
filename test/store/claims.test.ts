// Nodes that share work (issue 20): jobs and deliveries are taken only by claiming them under a lease, on SQLite
// (one node) and on PostgreSQL (two "nodes": two connections to one database, each with its own PipelineStore).
import test, { type ExecutionContext } from 'ava';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { GatewayError } from '../../src/errors.js';
import { JobStore } from '../../src/store/job-store.js';
import { receivedInstance } from '../helpers/received-instance.js';
import { migratePostgres } from '../../src/store/migrations/postgres.js';
import { NodeRegistry } from '../../src/store/nodes.js';
import { PipelineStore } from '../../src/store/pipeline-store.js';
import { PostgresDatabase } from '../../src/store/postgres/postgres-database.js';
import type { SqlDatabase } from '../../src/store/sql-database.js';
import { startPostgres, type PostgresUnderTest } from '../helpers/postgres.js';

let cluster: PostgresUnderTest;
test.before(async () => {
  cluster = await startPostgres();
});
test.after.always(async () => {
  await cluster?.stop();
});

const LEASE_MS = 30_000;

interface TwoNodes {
  /** Node a's and node b's connections to the one store. */
  a: SqlDatabase;
  b: SqlDatabase;
  jobs: JobStore;
  nodeA: PipelineStore;
  nodeB: PipelineStore;
  /** No node: sets up jobs and reads them back as the CLI would. */
  admin: PipelineStore;
}

const engines = {
  sqlite: (t: ExecutionContext): Promise<TwoNodes> => {
    const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'claims-')), 'jobs.sqlite');
    const first = JobStore.open(file);
    const second = JobStore.open(file);
    t.teardown(() => {
      first.close();
      second.close();
    });
    return Promise.resolve(nodes(first.connection, second.connection));
  },
  postgres: async (t: ExecutionContext): Promise<TwoNodes> => {
    const url = await cluster.createDatabase();
    const a = PostgresDatabase.open({ url });
    const b = PostgresDatabase.open({ url });
    t.teardown(() => {
      a.close();
      b.close();
    });
    migratePostgres(a);
    return nodes(a, b);
  },
};

function nodes(a: SqlDatabase, b: SqlDatabase): TwoNodes {
  return {
    a,
    b,
    jobs: JobStore.fromDatabase(a),
    nodeA: new PipelineStore(a, 'node-a'),
    nodeB: new PipelineStore(b, 'node-b'),
    admin: new PipelineStore(a),
  };
}

/** A routed job (processing, one pending image, unleased) of study `uid`; its id. */
function processingJob(s: TwoNodes, uid: string, priority: 'urgent' | 'normal' = 'normal'): number {
  const received = receivedInstance(uid, 1000);
  s.jobs.recordInstance(received);
  const [ready] = s.jobs.promoteQuietStudies(1000, 1000);
  if (ready === undefined) throw new Error('not promoted');
  s.admin.routeJob(
    ready.jobId,
    {
      rule: 'chest',
      action: '{}',
      priority,
      images: [{ sopInstanceUid: received.sopInstanceUid, path: received.path }],
    },
    1000,
  );
  return ready.jobId;
}

/** A job in delivering with one pending delivery to each of `destinations`; its delivery ids in that order. */
function deliveringJob(s: TwoNodes, uid: string, destinations: string[]): number[] {
  const jobId = processingJob(s, uid);
  s.admin.finishProcessing(
    jobId,
    { deliveries: destinations.map((destination) => ({ kind: 'pacs' as const, destination, payload: '{}' })) },
    1000,
  );
  return destinations.map((d) => s.admin.deliveries(jobId).find((x) => x.destination === d)?.id ?? -1);
}

for (const [engine, open] of Object.entries(engines)) {
  test(`${engine}: two nodes claim disjoint jobs, and none is left to a third claim`, async (t) => {
    const s = await open(t);
    const first = processingJob(s, '3.1');
    const second = processingJob(s, '3.2');
    const a = s.nodeA.claimActiveJob(2000, LEASE_MS);
    const b = s.nodeB.claimActiveJob(2000, LEASE_MS);
    t.deepEqual([a?.jobId, b?.jobId], [first, second]);
    t.is(s.nodeA.claimActiveJob(2000, LEASE_MS), undefined);
    t.deepEqual(
      s.jobs.listJobs().map((j) => j.leaseOwner),
      ['node-a', 'node-b'],
      'jobs shows who holds what',
    );
  });

  test(`${engine}: a ready job is claimed for routing by one node, and routing gives the lease back`, async (t) => {
    const s = await open(t);
    const received = receivedInstance('4.1', 1000);
    s.jobs.recordInstance(received);
    const [ready] = s.jobs.promoteQuietStudies(1000, 1000);
    t.is(s.nodeA.claimReadyJob(2000, LEASE_MS)?.jobId, ready?.jobId);
    t.is(s.nodeB.claimReadyJob(2000, LEASE_MS), undefined, 'held by node a');
    const images = [{ sopInstanceUid: received.sopInstanceUid, path: received.path }];
    const decision = { rule: 'chest', action: '{}', priority: 'normal' as const, images };
    const refused = t.throws(() => s.nodeB.routeJob(ready?.jobId ?? 0, decision, 2000));
    t.is((refused as GatewayError).code, 'LEASE_LOST');
    s.nodeA.routeJob(ready?.jobId ?? 0, decision, 2000);
    t.like(s.jobs.listJobs()[0], { state: 'processing', leaseOwner: null });
    t.is(s.nodeB.claimActiveJob(2000, LEASE_MS)?.jobId, ready?.jobId);
  });

  test(`${engine}: a ready job whose holder stopped renewing is taken over for routing, naming that node`, async (t) => {
    const s = await open(t);
    s.jobs.recordInstance(receivedInstance('4.2', 1000));
    const [ready] = s.jobs.promoteQuietStudies(1000, 1000);
    t.like(s.nodeA.claimReadyJob(2000, LEASE_MS), { jobId: ready?.jobId, takenOverFrom: undefined });
    t.like(s.nodeB.claimReadyJob(2000 + LEASE_MS, LEASE_MS), { jobId: ready?.jobId, takenOverFrom: 'node-a' });
  });

  test(`${engine}: a node that stops renewing loses its job to another after the lease, and its late result is refused`, async (t) => {
    const s = await open(t);
    const jobId = processingJob(s, '5.1');
    const image = s.admin.jobImages(jobId)[0]?.sopInstanceUid ?? '';
    const first = s.nodeA.claimActiveJob(2000, LEASE_MS);
    t.is(first?.jobId, jobId);
    t.is(first?.takenOverFrom, undefined, 'a job nobody held is no takeover');
    t.is(s.nodeB.claimActiveJob(2000 + LEASE_MS - 1, LEASE_MS), undefined, 'not before the lease runs out');
    t.like(
      s.nodeB.claimActiveJob(2000 + LEASE_MS, LEASE_MS),
      { jobId, takenOverFrom: 'node-a' },
      'taken over once it has, naming the node whose lease ran out',
    );
    const late = t.throws(() =>
      s.nodeA.recordImage(jobId, image, { state: 'written', result: '{"late":true}' }, 40_000),
    );
    t.is((late as GatewayError).code, 'LEASE_LOST');
    t.regex(late?.message ?? '', /node 'node-a' no longer holds the lease on job \d+ \(node 'node-b' does\)/);
    const finish = t.throws(() => s.nodeA.finishProcessing(jobId, { deliveries: [] }, 40_000));
    t.is((finish as GatewayError).code, 'LEASE_LOST');
    t.throws(() => s.nodeA.deferJob(jobId, 99_000, 'waiting', 40_000));
    t.throws(() => s.nodeA.beginAttempt(jobId, 40_000));
    t.throws(() => s.nodeA.recordCrash(jobId, [image], 40_000));
    t.like(s.admin.jobImages(jobId)[0], { state: 'pending', result: null, crashes: 0 }, 'nothing of node a landed');
    t.like(s.jobs.listJobs()[0], { state: 'processing', attempts: 0, leaseOwner: 'node-b' });
    s.nodeB.recordImage(jobId, image, { state: 'written', result: '{}' }, 40_000);
    s.nodeB.finishProcessing(jobId, { deliveries: [] }, 40_000);
    t.like(s.jobs.listJobs()[0], { state: 'done', leaseOwner: null });
  });

  test(`${engine}: a heartbeat renews the leases its node works on, so a working node keeps its job`, async (t) => {
    const s = await open(t);
    const jobId = processingJob(s, '6.1');
    const registry = new NodeRegistry(s.a);
    registry.register('node-a', ['analyze'], 1000);
    t.is(s.nodeA.claimActiveJob(2000, LEASE_MS)?.jobId, jobId);
    t.is(registry.heartbeat('node-a', 20_000, 20_000 + LEASE_MS, { jobs: [jobId], deliveries: [] }), 0);
    t.is(s.nodeB.claimActiveJob(40_000, LEASE_MS), undefined, 'renewed until 50 s');
    t.is(s.nodeB.claimActiveJob(50_000, LEASE_MS)?.jobId, jobId, 'and no further without another heartbeat');
    t.like(registry.list(), [{ name: 'node-a', roles: ['analyze'], startedAt: 1000, heartbeatAt: 20_000 }]);
  });

  test(`${engine}: a heartbeat gives back the leases under its name that its node no longer works on, and only those`, async (t) => {
    const s = await open(t);
    const kept = processingJob(s, '6.2');
    const left = processingJob(s, '6.3');
    const others = processingJob(s, '6.4');
    const [keptDelivery, leftDelivery] = deliveringJob(s, '6.5', ['pacs-a', 'pacs-b']);
    const registry = new NodeRegistry(s.a);
    registry.register('node-a', ['analyze', 'deliver'], 1000);
    registry.register('node-b', ['analyze'], 1000);
    t.deepEqual(
      [kept, left].map(() => s.nodeA.claimActiveJob(2000, LEASE_MS)?.jobId),
      [kept, left],
    );
    t.is(s.nodeB.claimActiveJob(2000, LEASE_MS)?.jobId, others);
    t.deepEqual(
      [0, 1].map(() => s.nodeA.claimDelivery(2000, LEASE_MS)?.id),
      [keptDelivery, leftDelivery],
    );
    // Node a works on `kept` and `keptDelivery` only: the release of the others failed (the disk was full).
    t.is(registry.heartbeat('node-a', 20_000, 20_000 + LEASE_MS, { jobs: [kept], deliveries: [keptDelivery ?? 0] }), 2);
    t.is(s.nodeB.claimActiveJob(20_000, LEASE_MS)?.jobId, left, 'given back: claimable at once, not after the lease');
    t.is(s.nodeB.claimActiveJob(20_000, LEASE_MS), undefined, "kept renewed; node b's own job untouched");
    t.is(s.nodeB.claimDelivery(20_000, LEASE_MS)?.id, leftDelivery);
    // Nothing worked on at all: every lease of the node goes back.
    t.is(registry.heartbeat('node-a', 21_000, 21_000 + LEASE_MS, { jobs: [], deliveries: [] }), 2);
    t.is(s.nodeB.claimActiveJob(21_000, LEASE_MS)?.jobId, kept);
  });

  test(`${engine}: a node that starts again under its name lets go of what its earlier life held`, async (t) => {
    const s = await open(t);
    const jobId = processingJob(s, '7.1');
    const [deliveryId] = deliveringJob(s, '7.2', ['pacs-a']);
    t.is(s.nodeA.claimActiveJob(2000, LEASE_MS)?.jobId, jobId);
    t.is(s.nodeA.claimDelivery(2000, LEASE_MS)?.id, deliveryId);
    new NodeRegistry(s.a).register('node-a', ['analyze', 'deliver'], 3000);
    const claimed = s.nodeB.claimActiveJob(3000, LEASE_MS);
    t.is(claimed?.jobId, jobId, 'at once, not after the lease');
    t.is(claimed?.takenOverFrom, undefined, 'a lease let go is no takeover');
    t.is(s.nodeB.claimDelivery(3000, LEASE_MS)?.id, deliveryId);
  });

  test(`${engine}: a later revision is not claimed while an earlier one of its study is still processing`, async (t) => {
    const s = await open(t);
    const first = processingJob(s, '8.1');
    const reopened = receivedInstance('8.1', 2000);
    s.jobs.recordInstance(reopened);
    const [second] = s.jobs.promoteQuietStudies(2000, 2000);
    s.admin.routeJob(
      second?.jobId ?? 0,
      {
        rule: 'chest',
        action: '{}',
        priority: 'urgent',
        images: [{ sopInstanceUid: reopened.sopInstanceUid, path: reopened.path }],
      },
      2000,
    );
    t.is(s.nodeA.claimActiveJob(3000, LEASE_MS)?.jobId, first);
    t.is(s.nodeB.claimActiveJob(3000, LEASE_MS), undefined, 'revision 1 waits for revision 0');
    s.nodeA.finishProcessing(first, { deliveries: [] }, 3000);
    t.is(s.nodeB.claimActiveJob(3000, LEASE_MS)?.jobId, second?.jobId);
  });

  test(`${engine}: a destination's lane is one lease at a time across nodes; a lease that runs out is taken over`, async (t) => {
    const s = await open(t);
    const [a1, b1] = deliveringJob(s, '9.1', ['pacs-a', 'pacs-b']);
    const [a2] = deliveringJob(s, '9.2', ['pacs-a']);
    t.is(s.nodeA.claimDelivery(2000, LEASE_MS)?.id, a1);
    const other = s.nodeB.claimDelivery(2000, LEASE_MS);
    t.is(other?.id, b1, "node b takes the other destination, not pacs-a's next delivery");
    t.is(other?.leaseOwner, 'node-b');
    t.is(s.nodeB.claimDelivery(2000, LEASE_MS), undefined, 'pacs-a is busy on node a, pacs-b on node b');
    s.nodeB.recordDelivery(b1 ?? 0, { kind: 'delivered' }, 3000);
    t.is(s.nodeB.claimDelivery(3000, LEASE_MS), undefined, 'pacs-a still busy');
    // Node a stops renewing: after the lease node b takes pacs-a's lane over, and node a's late outcome is refused.
    const taken = s.nodeB.claimDelivery(2000 + LEASE_MS, LEASE_MS);
    t.is(taken?.id, a1);
    const late = t.throws(() => s.nodeA.recordDelivery(a1 ?? 0, { kind: 'delivered' }, 40_000));
    t.is((late as GatewayError).code, 'LEASE_LOST');
    t.like(
      s.admin.deliveries().find((d) => d.id === a1),
      { state: 'pending', attempts: 0, leaseOwner: 'node-b' },
    );
    s.nodeB.recordDelivery(a1 ?? 0, { kind: 'retry', reason: 'x: refused', nextAttemptAt: 40_000 }, 40_000);
    t.like(
      s.admin.deliveries().find((d) => d.id === a1),
      { state: 'pending', attempts: 1, leaseOwner: null },
      'an attempt over gives the lease back',
    );
    t.is(s.nodeA.claimDelivery(40_000, LEASE_MS)?.id, a1, 'pacs-a: the first job first, the second after it');
    s.nodeA.recordDelivery(a1 ?? 0, { kind: 'delivered' }, 41_000);
    t.is(s.nodeB.claimDelivery(41_000, LEASE_MS)?.id, a2);
  });

  test(`${engine}: a store without a node claims nothing`, async (t) => {
    const s = await open(t);
    processingJob(s, '10.1');
    const error = t.throws(() => s.admin.claimActiveJob(2000, LEASE_MS));
    t.is((error as GatewayError).code, 'LEASE_NO_HOLDER');
  });
}

test('postgres: two nodes claiming at the same moment skip the row the other has locked', async (t) => {
  const s = await engines.postgres(t);
  const first = processingJob(s, '11.1');
  const second = processingJob(s, '11.2');
  // Node a's claim is still uncommitted (its row locked) when node b claims: b must pass over it, not wait for it
  // (a wait would block this thread until the answer timeout) and not take it.
  const claimed = s.a.transaction(() => {
    const a = s.nodeA.claimActiveJob(2000, LEASE_MS);
    const b = s.nodeB.claimActiveJob(2000, LEASE_MS);
    return [a?.jobId, b?.jobId];
  })();
  t.deepEqual(claimed, [first, second]);
});

test('postgres: two receive nodes promoting at once make one job per study revision', async (t) => {
  const s = await engines.postgres(t);
  const other = JobStore.fromDatabase(s.b);
  s.jobs.recordInstance(receivedInstance('12.1', 1000));
  s.jobs.recordInstance(receivedInstance('12.2', 1000));
  const [mine, theirs] = s.a.transaction(() => {
    const a = s.jobs.promoteQuietStudies(1000, 2000);
    const b = other.promoteQuietStudies(1000, 2000);
    return [a, b];
  })();
  t.deepEqual(
    mine?.map((r) => r.studyInstanceUid),
    ['12.1', '12.2'],
  );
  t.deepEqual(theirs, [], 'the other node passed over the studies being promoted');
  t.deepEqual(other.promoteQuietStudies(1000, 3000), [], 'and finds them ready once that commits');
  t.deepEqual(
    s.jobs.listJobs().map((j) => [j.studyInstanceUid, j.revision]),
    [
      ['12.1', 0],
      ['12.2', 0],
    ],
  );
});

test("postgres: one study's images received by two nodes make one job, its quiet period judged from the store", async (t) => {
  const s = await engines.postgres(t);
  const other = JobStore.fromDatabase(s.b);
  const quietMs = 5_000;
  const promote = (store: JobStore, now: number) => store.promoteQuietStudies(now - quietMs, now);
  // The first image reaches node a, the second node b four seconds later.
  s.jobs.recordInstance(receivedInstance('13.1', 1000));
  other.recordInstance(receivedInstance('13.1', 5000));
  // At 8 s node a's own image has been quiet for 7 s, but the study has not: neither node promotes it.
  t.deepEqual(promote(s.jobs, 8000), []);
  t.deepEqual(promote(other, 8000), []);
  // Quiet for 5 s since its last image, whichever node received it: one job, holding both images.
  t.deepEqual(
    promote(other, 10_000).map((r) => r.studyInstanceUid),
    ['13.1'],
  );
  t.deepEqual(promote(s.jobs, 10_000), []);
  t.like(s.jobs.listJobs(), [{ studyInstanceUid: '13.1', revision: 0, instanceCount: 2 }]);
  t.is(s.jobs.listJobs().length, 1);
});
