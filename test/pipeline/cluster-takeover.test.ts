// Two analysis nodes on one store (issue 20), on SQLite (two connections to one file) and on PostgreSQL: node a
// claims the job and hangs in inference without renewing its lease; once the lease runs out node b takes the job
// over, writes it and delivers it once; node a's late results are refused and nothing of it reaches a destination.
import test from 'ava';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ImageWorkRequest, ImageWorkResult } from '../../src/analysis/image-work.js';
import type { InferencePool } from '../../src/analysis/inference-pool.js';
import type { GatewayConfig } from '../../src/config/schema.js';
import type { DeliveryPayload, DeliveryTarget } from '../../src/export/delivery-target.js';
import { readManifest } from '../../src/inference/model-manifest.js';
import { Pipeline } from '../../src/pipeline/pipeline.js';
import { JobStore } from '../../src/store/job-store.js';
import { PipelineStore } from '../../src/store/pipeline-store.js';
import { newUid, writeImageFile } from '../helpers/dicom-factory.js';
import { chestPipelineConfig, recordTestInstance, writtenResult } from '../helpers/pipeline-harness.js';
import { startPostgres, type PostgresUnderTest } from '../helpers/postgres.js';
import { twoNodeStores } from '../helpers/two-node-stores.js';
import { tinyModelDir } from '../helpers/tiny-densenet.js';
import { waitUntil } from '../helpers/wait-until.js';
import { capturingLogger } from '../store/disk-full-helpers.js';

let cluster: PostgresUnderTest;
test.before(async () => {
  cluster = await startPostgres();
});
test.after.always(async () => {
  await cluster?.stop();
});

const START = Date.parse('2026-01-05T08:00:00Z');
const LEASE_SECONDS = 3000;

const engines = twoNodeStores(() => cluster, 'cluster-takeover-');

function node(
  store: JobStore,
  name: string,
  process: (request: ImageWorkRequest) => Promise<ImageWorkResult[]>,
  clock: { now: number },
  outputsDir: string,
) {
  const base = chestPipelineConfig();
  // A heartbeat never comes by itself here: node a "hangs" without renewing its lease.
  const config: GatewayConfig = {
    ...base,
    cluster: { nodeName: name, roles: ['analyze', 'deliver'], leaseSeconds: LEASE_SECONDS, heartbeatSeconds: 1000 },
  };
  const pool = { size: 1, process } as unknown as InferencePool;
  const delivered: DeliveryPayload[] = [];
  const target = (targetName: string, kind: 'pacs' | 'ris'): DeliveryTarget => ({
    name: targetName,
    kind,
    deliver: (payload) => {
      delivered.push(payload);
      return Promise.resolve({ kind: 'delivered' });
    },
  });
  const { logger, lines } = capturingLogger();
  const pipeline = new Pipeline({
    config,
    store,
    pipelineStore: new PipelineStore(store.connection),
    models: new Map([['tiny', { pool, manifest: readManifest(tinyModelDir()) }]]),
    targets: new Map([
      ['pacs', target('pacs', 'pacs')],
      ['ris', target('ris', 'ris')],
    ]),
    outputsDir,
    logger,
    now: () => clock.now,
  });
  return { pipeline, delivered, lines };
}

for (const [engine, open] of Object.entries(engines)) {
  test(`${engine}: a node that stops renewing loses its job to another, which writes and delivers it once; the late results are refused`, async (t) => {
    const [storeA, storeB] = await open(t);
    const input = mkdtempSync(path.join(os.tmpdir(), 'cluster-takeover-in-'));
    const outputs = mkdtempSync(path.join(os.tmpdir(), 'cluster-takeover-out-'));
    const image = await writeImageFile(input, { studyInstanceUid: newUid(), seed: 1, instanceNumber: 1 });
    recordTestInstance(storeA, image, START);
    storeA.promoteQuietStudies(START, START);
    const clock = { now: START };

    let hung!: (results: ImageWorkResult[]) => void;
    let inferenceOnA!: () => void;
    const startedOnA = new Promise<void>((resolve) => (inferenceOnA = resolve));
    const a = node(
      storeA,
      'node-a',
      () =>
        new Promise<ImageWorkResult[]>((resolve) => {
          hung = resolve;
          inferenceOnA();
        }),
      clock,
      outputs,
    );
    const b = node(
      storeB,
      'node-b',
      (request) => Promise.resolve(request.images.map((i) => writtenResult(i.sopInstanceUid))),
      clock,
      outputs,
    );
    t.teardown(async () => {
      hung?.([]);
      await Promise.all([a.pipeline.stop(), b.pipeline.stop()]);
    });

    await a.pipeline.start();
    await startedOnA;
    const jobId = storeA.listJobs()[0]?.id ?? 0;
    t.like(storeA.listJobs()[0], { state: 'processing', leaseOwner: 'node-a' });

    // Node a's lease runs out (it never beat): node b, woken, takes the job over and finishes it.
    clock.now = START + LEASE_SECONDS * 1000;
    await b.pipeline.start();
    await waitUntil(() => storeB.listJobs()[0]?.state === 'done', 'node b to finish the job', 20_000);
    t.deepEqual(
      b.delivered.map((d) => d.kind),
      ['pacs', 'ris'],
    );

    // Node a's inference answers at last: refused, and nothing more is written or delivered.
    hung([writtenResult(image.sopInstanceUid)]);
    await a.pipeline.stop();
    const lost = a.lines.find((l) => l['event'] === 'PIPELINE-4012');
    t.like(lost, { node: 'node-a', jobId });
    t.regex(String(lost?.['why']), /node 'node-a' no longer holds the lease on job \d+/);
    t.deepEqual(a.delivered, [], 'node a delivered nothing');
    const reader = new PipelineStore(storeA.connection);
    t.deepEqual(
      reader.deliveries(jobId).map((d) => [d.kind, d.state, d.attempts]),
      [
        ['pacs', 'delivered', 1],
        ['ris', 'delivered', 1],
      ],
    );
    t.like(storeA.listJobs()[0], { state: 'done', leaseOwner: null });
  });
}
