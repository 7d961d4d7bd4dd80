// A node's heartbeat (issue 20): its row says when it last beat, its leases are renewed for another lease time,
// and a beat that cannot reach the store is logged (PIPELINE-4013), not thrown out of the timer.
import test from 'ava';
import { configSchema } from '../../src/config/schema.js';
import { Pipeline } from '../../src/pipeline/pipeline.js';
import { NodeRegistry } from '../../src/store/nodes.js';
import { PipelineStore } from '../../src/store/pipeline-store.js';
import { openTestStore, queueDeliveryJob } from '../helpers/pipeline-harness.js';
import { capturingLogger } from '../store/disk-full-helpers.js';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const START = Date.parse('2026-01-05T08:00:00Z');

test("a beat moves its node's row; a lease under its name that it does not work on is given back, not renewed; a beat that cannot reach the store is logged, not thrown", async (t) => {
  const store = openTestStore('cluster-heartbeat-');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'cluster-heartbeat-out-'));
  const reader = new PipelineStore(store.connection);
  const jobId = queueDeliveryJob(store, reader, { studyInstanceUid: '1.2.3', dir, clock: START, pacs: ['pacs'] });
  const clock = { now: START };
  const { logger, lines } = capturingLogger();
  const pipeline = new Pipeline({
    // Neither loop runs (receive only): the lease below is one this node's process does not work on, as one whose
    // release failed (the disk full) is left behind. Renewal of the leases a node works on: cluster-deliveries.
    config: configSchema.parse({
      cluster: { nodeName: 'gw-1', roles: ['receive'], leaseSeconds: 3000, heartbeatSeconds: 1000 },
    }),
    store,
    pipelineStore: reader,
    models: new Map(),
    targets: new Map(),
    outputsDir: dir,
    logger,
    now: () => clock.now,
  });
  await pipeline.start();
  t.like(pipeline.status().figures, { roleReceive: 1, roleAnalyze: 0, roleDeliver: 0 });
  const left = reader.as('gw-1');
  t.is(left.claimDelivery(START, 3_000_000)?.jobId, jobId);
  const other = reader.as('gw-2');
  t.is(other.claimDelivery(START + 1000, 3_000_000), undefined, 'leased to gw-1');

  clock.now = START + 2_000_000;
  pipeline.heartbeat();
  t.like(new NodeRegistry(store.connection).list(), [{ name: 'gw-1', roles: ['receive'], heartbeatAt: clock.now }]);
  t.like(
    lines.find((l) => l['event'] === 'PIPELINE-4016'),
    { node: 'gw-1', released: 1 },
  );
  t.is(other.claimDelivery(START + 2_000_001, 3_000_000)?.jobId, jobId, 'given back: another node takes it at once');

  await pipeline.stop();
  store.close();
  t.notThrows(() => pipeline.heartbeat());
  t.like(
    lines.find((l) => l['event'] === 'PIPELINE-4013'),
    { node: 'gw-1' },
  );
});
