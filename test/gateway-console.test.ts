import test from 'ava';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import type { AuditLog } from '../src/admin/console-service.js';
import { configSchema, type GatewayConfig } from '../src/config/schema.js';
import { Gateway, storeFileOf } from '../src/gateway.js';
import { createLogger } from '../src/logging/logger.js';
import type { ConsoleQueries } from '../src/store/console-queries.js';
import { JobStore } from '../src/store/job-store.js';
import { freePort } from './helpers/ports.js';
import { tinyModelDir } from './helpers/tiny-densenet.js';
import { waitUntil } from './helpers/wait-until.js';

// The daemon's wiring of the console: the store watch (a commit by another process wakes the pipeline), the
// console's store side feeding /healthz (parked deliveries), and the console service's actions reaching the
// pipeline.

function capture(): { logger: ReturnType<typeof createLogger>; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk: Buffer, _e, cb) {
      for (const line of chunk.toString().split('\n')) if (line.trim() !== '') lines.push(JSON.parse(line) as never);
      cb();
    },
  });
  return { logger: createLogger({ level: 'info', format: 'json', stream }), lines };
}

async function config(): Promise<GatewayConfig> {
  return configSchema.parse({
    dicom: { host: '127.0.0.1', port: await freePort() },
    storage: { dataDir: mkdtempSync(path.join(os.tmpdir(), 'gateway-console-')), minFreeDiskMB: 1 },
    admin: { host: '127.0.0.1', port: 0 },
    models: { tiny: tinyModelDir() },
    inference: { defaultModel: 'tiny', workers: 1, backend: 'wasm' },
    destinations: { pacs: [], ris: [] },
    // The sweep would wake the pipeline too: make it rare, so only the store watch can.
    maintenance: { retrySweepSchedule: '0 0 1 1 *' },
    rules: [],
  });
}

test('store watch: a job made ready by another process (the CLI) is picked up without any other event', async (t) => {
  const running = await config();
  const { logger, lines } = capture();
  const gateway = new Gateway(running, logger, { storeWatchMs: 50 });
  t.teardown(() => gateway.stop());
  await gateway.start();
  // Another connection, as the CLI has: an instance recorded and its study promoted to a ready job.
  const other = JobStore.open(storeFileOf(running));
  t.teardown(() => other.close());
  other.recordInstance({
    sopInstanceUid: '1.2.3.4.1',
    sopClassUid: '1.2.840.10008.5.1.4.1.1.1.1',
    studyInstanceUid: '1.2.3.4',
    seriesInstanceUid: '1.2.3.4.9',
    transferSyntaxUid: '1.2.840.10008.1.2.1',
    path: '/nonexistent/1.dcm',
    sizeBytes: 1,
    callingAe: 'CLI',
    calledAe: 'CXR_GATEWAY',
    sourceIp: '127.0.0.1',
    associationId: 'cli',
    attributes: {},
    receivedAt: 1,
  });
  t.is(other.promoteQuietStudies(Date.now(), Date.now()).length, 1);
  // Routed (ignored: no rules) by the pipeline, which only the store watch woke.
  await waitUntil(() => lines.some((l) => l['event'] === 'PIPELINE-4002'), 'the pipeline to route the job', 20_000);
  t.is(other.listJobs()[0]?.state, 'ignored');
});

test('console wiring: parked deliveries from the console store degrade /healthz; release wakes the pipeline', async (t) => {
  const running = await config();
  const { logger, lines } = capture();
  let parked = 2;
  const released: number[] = [];
  const unused = () => {
    throw new Error('not used here');
  };
  const queries: ConsoleQueries = {
    destinationActivity: () => [
      {
        destination: 'ris-main',
        kind: 'ris',
        lastSuccessAt: null,
        lastFailureAt: 1,
        lastFailure: 'AR',
        pending: 0,
        parked,
      },
    ],
    releaseDelivery: (id) => {
      released.push(id);
      parked -= 1;
      return [];
    },
    studies: unused,
    studyRows: unused,
    jobs: unused,
    deliveries: unused,
    delivery: unused,
    studyOfJob: unused,
    recentStudies: unused,
    throughput: unused,
    releaseDestination: unused,
    discardDelivery: unused,
    reprocessStudy: unused,
  };
  const audit: AuditLog = { record: () => 1, list: unused };
  const gateway = new Gateway(running, logger, { console: () => ({ queries, audit }), version: '9.9.9' });
  t.teardown(() => gateway.stop());
  await gateway.start();
  const ready = lines.find((l) => l['event'] === 'GATEWAY-7010');
  const url = String(ready?.['url']);
  const degraded = await fetch(url);
  t.is(degraded.status, 503);
  const body = (await degraded.json()) as { problems: string[] };
  t.true(
    body.problems.some((p) => p.startsWith("2 deliveries are parked (2 to 'ris-main')")),
    JSON.stringify(body.problems),
  );
  const backend = gateway.console();
  t.truthy(backend);
  backend?.releaseDelivery(5, { user: 'alice', role: 'admin', address: '127.0.0.1' });
  backend?.releaseDelivery(6, { user: 'alice', role: 'admin', address: '127.0.0.1' });
  t.deepEqual(released, [5, 6]);
  t.true(lines.some((l) => l['event'] === 'ADMIN-7201'));
  t.is((await fetch(url)).status, 200);
  t.is(backend?.dashboard === undefined, false);
});
