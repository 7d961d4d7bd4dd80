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

test('a beat renews the leases of its node and its row; a beat that cannot reach the store is logged, not thrown', async (t) => {
  const store = openTestStore('cluster-heartbeat-');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'cluster-heartbeat-out-'));
  const reader = new PipelineStore(store.connection);
  const jobId = queueDeliveryJob(store, reader, { studyInstanceUid: '1.2.3', dir, clock: START, pacs: ['pacs'] });
  const clock = { now: START };
  const { logger, lines } = capturingLogger();
  const pipeline = new Pipeline({
    // Neither loop runs (receive only): the test holds the lease itself, as the node's store would.
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
  const held = reader.as('gw-1');
  t.is(held.claimDelivery(START, 3_000_000)?.jobId, jobId);

  clock.now = START + 2_000_000;
  pipeline.heartbeat();
  t.like(new NodeRegistry(store.connection).list(), [{ name: 'gw-1', roles: ['receive'], heartbeatAt: clock.now }]);
  const other = reader.as('gw-2');
  t.is(other.claimDelivery(START + 4_999_999, 3_000_000), undefined, 'renewed until 5000 s');
  t.is(other.claimDelivery(START + 5_000_000, 3_000_000)?.jobId, jobId);

  await pipeline.stop();
  store.close();
  t.notThrows(() => pipeline.heartbeat());
  t.like(
    lines.find((l) => l['event'] === 'PIPELINE-4013'),
    { node: 'gw-1' },
  );
});
