import test from 'ava';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { AdminServer } from '../../src/admin/admin-server.js';
import { stagesHealth, type NamedStatus } from '../../src/admin/health.js';
import type { StageStatus } from '../../src/logging/lifecycle.js';
import { createLogger } from '../../src/logging/logger.js';
import { JobStore } from '../../src/store/job-store.js';
import { StoreMetrics } from '../../src/store/store-metrics.js';

// /healthz is built from the stages' status(): a stage that is not running, or that names a problem, makes the
// daemon degraded with a sentence that names the stage.

const running: StageStatus = { state: 'running', problems: [] };

test('stagesHealth: all running is healthy; a stage stopping, or running with problems, is named', (t) => {
  t.deepEqual(stagesHealth([{ name: 'pipeline', status: running }]).problems, []);
  const stages: NamedStatus[] = [
    { name: 'store', status: running },
    { name: 'dicom-listener', status: { state: 'stopping', problems: [] } },
    { name: 'analysis', status: { state: 'degraded', problems: ['1 of 2 workers'] } },
  ];
  const health = stagesHealth(stages);
  t.deepEqual(health.problems, ['dicom-listener is stopping', 'analysis: 1 of 2 workers']);
  t.deepEqual(Object.keys(health.check), ['store', 'dicom-listener', 'analysis']);
});

test('AdminServer.health() reads the stages at each request', (t) => {
  const store = JobStore.open(path.join(mkdtempSync(path.join(os.tmpdir(), 'health-')), 'db.sqlite'));
  t.teardown(() => store.close());
  let pipeline: StageStatus = running;
  const admin = new AdminServer({
    host: '127.0.0.1',
    port: 0,
    metrics: new StoreMetrics(store.connection),
    logger: createLogger({ level: 'error', format: 'json', stream: new Writable({ write: (_c, _e, cb) => cb() }) }),
    health: {
      storeOk: () => true,
      freeDiskBytes: () => 10 * 1048576,
      minFreeDiskBytes: 1048576,
      models: () => [],
      dicomListening: () => true,
      stages: () => [{ name: 'pipeline', status: pipeline }],
    },
  });
  t.is(admin.health().status, 'ok');
  pipeline = { state: 'stopping', problems: [] };
  const degraded = admin.health();
  t.is(degraded.status, 'degraded');
  t.deepEqual(degraded.problems, ['pipeline is stopping']);
});

test('AdminServer.stop(deadline) closes a keep-alive connection that a monitoring client holds open', async (t) => {
  const store = JobStore.open(path.join(mkdtempSync(path.join(os.tmpdir(), 'health-')), 'db.sqlite'));
  t.teardown(() => store.close());
  const admin = new AdminServer({
    host: '127.0.0.1',
    port: 0,
    metrics: new StoreMetrics(store.connection),
    logger: createLogger({ level: 'error', format: 'json', stream: new Writable({ write: (_c, _e, cb) => cb() }) }),
    health: {
      storeOk: () => true,
      freeDiskBytes: () => 10 * 1048576,
      minFreeDiskBytes: 1048576,
      models: () => [],
      dicomListening: () => true,
    },
  });
  const address = await admin.start();
  t.is(admin.status().state, 'running');
  const response = await fetch(`http://127.0.0.1:${address.port}/healthz`, { keepalive: true });
  t.is(response.status, 200);
  await response.text();
  const started = Date.now();
  await admin.stop(Date.now() + 200);
  t.true(Date.now() - started < 2000);
  t.is(admin.status().state, 'stopped');
});
