// Draining a node (issue 20): a draining node claims no new job or delivery but finishes what it holds, and the
// leases each node holds are counted for the cluster view and `cxr-gateway drain`; on SQLite and PostgreSQL.
import test from 'ava';
import type { JobStore } from '../../src/store/job-store.js';
import { receivedInstance } from '../helpers/received-instance.js';
import { NodeRegistry } from '../../src/store/nodes.js';
import { openStore } from '../../src/store/open-store.js';
import { PipelineStore } from '../../src/store/pipeline-store.js';
import { engineTests } from './engines.js';

const engineTest = engineTests(test);
const LEASE_MS = 30_000;

/** A routed job of study `uid` (processing, one pending image, unleased); its id. */
function processingJob(jobs: JobStore, admin: PipelineStore, uid: string): number {
  const received = receivedInstance(uid, 1000);
  jobs.recordInstance(received);
  const [ready] = jobs.promoteQuietStudies(1000, 1000);
  if (ready === undefined) throw new Error('not promoted');
  const images = [{ sopInstanceUid: received.sopInstanceUid, path: received.path }];
  admin.routeJob(ready.jobId, { rule: 'chest', action: '{}', priority: 'normal', images }, 1000);
  return ready.jobId;
}

engineTest(
  'a draining node claims nothing new, finishes what it holds, and claims again once undone',
  (t, location) => {
    const { store: jobs } = openStore(location, 'write');
    t.teardown(() => jobs.close());
    const db = jobs.connection;
    const admin = new PipelineStore(db);
    const nodeA = admin.as('node-a');
    const nodeB = admin.as('node-b');
    const registry = new NodeRegistry(db);
    registry.register('node-a', ['receive', 'analyze', 'deliver'], 1000);
    registry.register('node-b', ['analyze', 'deliver'], 1000);

    const held = processingJob(jobs, admin, '20.1');
    const waiting = processingJob(jobs, admin, '20.2');
    t.is(nodeA.claimActiveJob(2000, LEASE_MS)?.jobId, held);
    const ready = receivedInstance('20.3', 1000);
    jobs.recordInstance(ready);
    const [readyJob] = jobs.promoteQuietStudies(1000, 1000);
    admin.finishProcessing(waiting, { deliveries: [{ kind: 'pacs', destination: 'pacs-a', payload: '{}' }] }, 1000);

    t.true(registry.setDraining('node-a', true));
    t.like(
      registry.list().find((r) => r.name === 'node-a'),
      { draining: true },
    );
    t.is(nodeA.claimActiveJob(2000, LEASE_MS), undefined, 'no new job to process');
    t.is(nodeA.claimReadyJob(2000, LEASE_MS), undefined, 'no job to route');
    t.is(nodeA.claimDelivery(2000, LEASE_MS), undefined, 'no delivery');
    t.false(nodeA.hasClaimableDelivery(2000), 'so its delivery timer does not go again at once, over and over');
    t.true(nodeB.hasClaimableDelivery(2000), 'node b could claim it');
    t.deepEqual([...registry.leasesHeld(2000)], [['node-a', { jobs: 1, deliveries: 0 }]]);

    // What node a holds it still finishes; the work it passed over is there for node b.
    const image = admin.jobImages(held)[0]?.sopInstanceUid ?? '';
    nodeA.recordImage(held, image, { state: 'written', result: '{}' }, 3000);
    nodeA.finishProcessing(held, { deliveries: [] }, 3000);
    t.deepEqual([...registry.leasesHeld(3000)], [], 'node a holds nothing now: it may be stopped');
    t.is(nodeB.claimReadyJob(3000, LEASE_MS)?.jobId, readyJob?.jobId);
    t.is(nodeB.claimDelivery(3000, LEASE_MS)?.destination, 'pacs-a');
    t.deepEqual([...registry.leasesHeld(3000)], [['node-b', { jobs: 1, deliveries: 1 }]]);
    t.deepEqual([...registry.leasesHeld(3000 + LEASE_MS)], [], 'leases that ran out are not counted');

    t.true(registry.setDraining('node-a', false));
    const another = processingJob(jobs, admin, '20.4');
    t.is(nodeA.claimActiveJob(4000, LEASE_MS)?.jobId, another, 'claims again once the drain is undone');
  },
);

engineTest('draining a node that never registered changes nothing and says so', (t, location) => {
  const { store: jobs } = openStore(location, 'write');
  t.teardown(() => jobs.close());
  const registry = new NodeRegistry(jobs.connection);
  registry.register('node-a', ['analyze'], 1000);
  t.false(registry.setDraining('node-z', true));
  t.deepEqual(
    registry.list().map((r) => [r.name, r.draining]),
    [['node-a', false]],
  );
});
