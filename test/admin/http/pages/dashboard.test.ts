// The status page's nodes table: the cluster part of /healthz as a table when the cluster has more than one node
// (state alive, draining or down; leases held), and nothing for a single node.
import test from 'ava';
import type { ClusterView } from '../../../../src/admin/cluster-view.js';
import type { ConsoleHealth, Dashboard } from '../../../../src/admin/console-types.js';
import { dashboardBody } from '../../../../src/admin/http/pages/dashboard.js';

const dashboard: Dashboard = {
  throughput: { receivedLastHour: 0, receivedLast24h: 0, finishedLastHour: 0, finishedLast24h: 0 },
  queue: { jobs: 0, deliveries: 0 },
  parked: 0,
  models: [],
  disk: { freeBytes: 10, minFreeBytes: 1 },
  status: 'ok',
  problems: [],
  version: '1',
  startedAt: 0,
};

const node = (name: string, alive: boolean, draining: boolean, jobs: number) => ({
  name,
  roles: ['receive', 'analyze'],
  startedAt: '2026-12-06T00:00:00.000Z',
  heartbeatAgeSeconds: alive ? 3 : 90,
  alive,
  draining,
  leases: { jobs, deliveries: 0 },
});

function health(nodes: ClusterView['nodes']): ConsoleHealth {
  const cluster: ClusterView = {
    node: { name: 'gw-1', roles: ['receive'], draining: false },
    leaseSeconds: 30,
    nodes,
  };
  return { status: 'ok', problems: [], checks: { cluster }, destinations: [] };
}

const squash = (text: string) => text.replace(/\s+/g, ' ').replace(/> </g, '><');

test('the status page lists the nodes of a cluster with their state and leases', (t) => {
  const page = squash(
    dashboardBody(
      dashboard,
      health([node('gw-1', true, false, 2), node('gw-2', true, true, 0), node('gw-3', false, false, 1)]),
    ).text,
  );
  t.regex(page, /<h2>Nodes<\/h2>/);
  t.regex(
    page,
    /<tr data-node="gw-1"><td>gw-1 \(this node\)<\/td><td>receive, analyze<\/td><td> ?alive ?<\/td><td>3 s ago<\/td><td>2<\/td><td>0<\/td><\/tr>/,
  );
  t.regex(page, /<tr data-node="gw-2"><td>gw-2<\/td><td>receive, analyze<\/td><td> ?draining ?<\/td>/);
  t.regex(
    page,
    /<tr data-node="gw-3"><td>gw-3<\/td><td>receive, analyze<\/td><td> ?<span class="alert">down<\/span> ?<\/td><td>90 s ago<\/td><td>1<\/td>/,
  );
});

test('a single node, or no cluster part, shows no nodes table', (t) => {
  t.notRegex(dashboardBody(dashboard, health([node('gw-1', true, false, 0)])).text, /id="nodes"/);
  t.notRegex(dashboardBody(dashboard, { status: 'ok', problems: [], checks: {}, destinations: [] }).text, /id="nodes"/);
});
