// cluster.*: a node's name and roles, and leases that outlive missed heartbeats.
import test from 'ava';
import os from 'node:os';
import { clusterSchema, configSchema, nodeNameOf } from '../../src/config/schema.js';

test('by default a node has every role, a 30 s lease renewed every 10 s, and the host name', (t) => {
  const cluster = configSchema.parse({}).cluster;
  t.deepEqual(cluster.roles, ['receive', 'analyze', 'deliver']);
  t.is(cluster.leaseSeconds, 30);
  t.is(cluster.heartbeatSeconds, 10);
  t.is(
    nodeNameOf(cluster),
    os
      .hostname()
      .replace(/[^A-Za-z0-9_.-]/g, '-')
      .slice(0, 64),
  );
  t.is(nodeNameOf(clusterSchema.parse({ nodeName: 'gw-2' })), 'gw-2');
});

test('a node without roles, with a role twice or an unknown one is refused', (t) => {
  t.regex(clusterSchema.safeParse({ roles: [] }).error?.message ?? '', /at least one role/);
  t.regex(clusterSchema.safeParse({ roles: ['analyze', 'analyze'] }).error?.message ?? '', /listed twice/);
  t.false(clusterSchema.safeParse({ roles: ['store'] }).success);
});

test('a lease not longer than two heartbeats is refused', (t) => {
  t.regex(
    clusterSchema.safeParse({ leaseSeconds: 20, heartbeatSeconds: 10 }).error?.message ?? '',
    /more than twice cluster.heartbeatSeconds/,
  );
  t.true(clusterSchema.safeParse({ leaseSeconds: 21, heartbeatSeconds: 10 }).success);
});

test('a node name with characters a name must not hold is refused', (t) => {
  t.false(clusterSchema.safeParse({ nodeName: 'gw 1' }).success);
});
