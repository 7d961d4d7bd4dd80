// The cluster part of /healthz and /metrics (issue 20), on SQLite and PostgreSQL, with the clock given: every node
// the store knows, alive or down by its heartbeat against cluster.leaseSeconds, draining, and the leases it holds.
// Another node down is said in the cluster part without degrading this node; this node draining degrades it (the
// load balancer's cue to send it nothing new).
import test from 'ava';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { clusterView } from '../../src/admin/cluster-view.js';
import { buildHealth, type HealthSource } from '../../src/admin/health.js';
import { metricsText } from '../../src/admin/metrics-text.js';
import { receiveReadiness } from '../../src/admin/readiness.js';
import { JobStore } from '../../src/store/job-store.js';
import { NodeRegistry } from '../../src/store/nodes.js';
import { openStore } from '../../src/store/open-store.js';
import { PipelineStore } from '../../src/store/pipeline-store.js';
import { StoreMetrics } from '../../src/store/store-metrics.js';
import { engineTests } from '../store/engines.js';
import { receivedInstance } from '../helpers/received-instance.js';

const engineTest = engineTests(test);
const LEASE_S = 30;
const T0 = 1_700_000_000_000;

engineTest(
  'the cluster part lists every node with its heartbeat age, state and leases; only its own drain degrades this node',
  (t, location) => {
    const { store } = openStore(location, 'write');
    t.teardown(() => store.close());
    const registry = new NodeRegistry(store.connection);
    registry.register('gw-1', ['receive', 'analyze'], T0);
    registry.register('gw-2', ['analyze'], T0);
    registry.register('gw-3', ['deliver'], T0);
    // A job held by gw-1 under a live lease.
    store.recordInstance(receivedInstance('1.2.826.99', T0));
    store.promoteQuietStudies(T0, T0);
    const claimed = new PipelineStore(store.connection, 'gw-1').claimReadyJob(T0, LEASE_S * 1000);
    t.truthy(claimed);

    const now = T0 + 40_000;
    registry.heartbeat('gw-1', now - 5000, now - 5000 + LEASE_S * 1000, {
      jobs: [claimed?.jobId ?? 0],
      deliveries: [],
    });
    registry.heartbeat('gw-3', now - 1000, now - 1000 + LEASE_S * 1000, { jobs: [], deliveries: [] });
    registry.setDraining('gw-3', true);
    // gw-2's last heartbeat is its start, 40 s ago: more than the 30 s lease, so it is down.
    const h: HealthSource = {
      storeOk: () => true,
      freeDiskBytes: () => 10 * 1048576,
      minFreeDiskBytes: 1048576,
      models: () => [],
      dicomListening: () => true,
      cluster: () => clusterView(registry, { name: 'gw-1', roles: ['receive', 'analyze'] }, LEASE_S, now),
    };
    const health = buildHealth(h);
    t.is(health.status, 'ok', "another node down does not degrade this node's health");
    t.deepEqual(health.checks.cluster, {
      node: { name: 'gw-1', roles: ['receive', 'analyze'], draining: false },
      leaseSeconds: LEASE_S,
      nodes: [
        {
          name: 'gw-1',
          roles: ['receive', 'analyze'],
          startedAt: new Date(T0).toISOString(),
          heartbeatAgeSeconds: 5,
          alive: true,
          draining: false,
          leases: { jobs: 1, deliveries: 0 },
        },
        {
          name: 'gw-2',
          roles: ['analyze'],
          startedAt: new Date(T0).toISOString(),
          heartbeatAgeSeconds: 40,
          alive: false,
          draining: false,
          leases: { jobs: 0, deliveries: 0 },
        },
        {
          name: 'gw-3',
          roles: ['deliver'],
          startedAt: new Date(T0).toISOString(),
          heartbeatAgeSeconds: 1,
          alive: true,
          draining: true,
          leases: { jobs: 0, deliveries: 0 },
        },
      ],
      problems: [
        "node 'gw-2' is down: no heartbeat for 40 s (cluster.leaseSeconds 30); the other nodes take over its jobs and deliveries",
      ],
    });

    const metrics = metricsText(h, new StoreMetrics(store.connection), undefined);
    t.regex(metrics, /^cxr_cluster_nodes\{state="alive"\} 1$/m);
    t.regex(metrics, /^cxr_cluster_nodes\{state="down"\} 1$/m);
    t.regex(metrics, /^cxr_cluster_nodes\{state="draining"\} 1$/m);
    t.regex(metrics, /^cxr_leases_held\{node="gw-1",kind="job"\} 1$/m);
    t.regex(metrics, /^cxr_leases_held\{node="gw-1",kind="delivery"\} 0$/m);
    t.regex(metrics, /^cxr_leases_held\{node="gw-2",kind="job"\} 0$/m);

    registry.setDraining('gw-1', true);
    const drained = buildHealth(h);
    t.is(drained.status, 'degraded', 'this node draining: the load balancer sends it nothing new');
    t.deepEqual(drained.problems, [
      "this node 'gw-1' is draining (cxr-gateway drain): it claims no new work and asks the load balancer for no new associations; cxr-gateway drain --undo ends it",
    ]);
    t.like(drained.checks.cluster, { node: { draining: true } });
  },
);

test('a cluster view that cannot be read is said in the cluster part, and /metrics leaves the cluster out', (t) => {
  const h: HealthSource = {
    storeOk: () => false,
    freeDiskBytes: () => 10 * 1048576,
    minFreeDiskBytes: 1048576,
    models: () => [],
    dicomListening: () => true,
    cluster: () => {
      throw new Error('the database is gone');
    },
  };
  const health = buildHealth(h);
  t.deepEqual(health.problems, ['the job store does not answer']);
  t.deepEqual(health.checks.cluster, { problems: ['the nodes cannot be read from the job store'] });
  const store = JobStore.open(path.join(mkdtempSync(path.join(os.tmpdir(), 'cluster-view-')), 'db.sqlite'));
  t.teardown(() => store.close());
  const metrics = metricsText(h, new StoreMetrics(store.connection), undefined);
  t.notRegex(metrics, /cxr_cluster_nodes|cxr_leases_held/);
  t.regex(metrics, /^cxr_disk_free_bytes /m, 'the rest is there');
});

test('/readyz readiness: shared-store troubles (parked deliveries, a refused reload) do not take a receive node out; its own disk or drain does', (t) => {
  let draining = false;
  let free = 10 * 1048576;
  const h: HealthSource = {
    storeOk: () => true,
    freeDiskBytes: () => free,
    minFreeDiskBytes: 1048576,
    models: () => [{ name: 'demo', loaded: false, backend: undefined, workers: 0 }],
    dicomListening: () => true,
    parked: () => [{ destination: 'pacs', parked: 2 }],
    lastReload: () => ({ at: T0, ok: false, trigger: 'SIGHUP', error: 'bad' }),
    cluster: () => ({
      node: { name: 'gw-1', roles: ['receive'], draining },
      leaseSeconds: LEASE_S,
      nodes: [],
    }),
  };
  t.is(buildHealth(h).status, 'degraded');
  t.deepEqual(receiveReadiness(h), { ready: true, problems: [] });
  draining = true;
  t.false(receiveReadiness(h).ready);
  t.regex(receiveReadiness(h).problems.join(), /this node 'gw-1' is draining/);
  draining = false;
  free = 1000;
  t.deepEqual(receiveReadiness(h), {
    ready: false,
    problems: ['free disk 0 MB is below storage.minFreeDiskMB: C-STOREs are refused'],
  });
});
