import test from 'ava';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { AdminServer } from '../../src/admin/admin-server.js';
import {
  buildHealth,
  stagesHealth,
  type HealthSource,
  type NamedStatus,
  type ParkedCount,
  type ReloadRecord,
} from '../../src/admin/health.js';
import { metricsText } from '../../src/admin/metrics-text.js';
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

// Monitoring that tells the truth (issue 16): parked deliveries, a refused reload and a model without a live
// worker each make /healthz degraded with a sentence that says what to do; /metrics keeps the counts.

function source(overrides: Partial<HealthSource> = {}): HealthSource {
  return {
    storeOk: () => true,
    freeDiskBytes: () => 10 * 1048576,
    minFreeDiskBytes: 1048576,
    models: () => [{ name: 'demo', loaded: true, backend: 'wasm', workers: 1 }],
    dicomListening: () => true,
    ...overrides,
  };
}

test('buildHealth: parked deliveries degrade, naming how many, where, and how to release them', (t) => {
  let parked: ParkedCount[] = [
    { destination: 'ris-main', parked: 2 },
    { destination: 'pacs-main', parked: 1 },
    { destination: 'pacs-folder', parked: 0 },
  ];
  const h = source({ parked: () => parked });
  const degraded = buildHealth(h);
  t.is(degraded.status, 'degraded');
  t.is(degraded.problems.length, 1);
  t.regex(degraded.problems[0] ?? '', /^3 deliveries are parked \(2 to 'ris-main', 1 to 'pacs-main'\)/);
  t.regex(degraded.problems[0] ?? '', /Parked page/);
  t.regex(degraded.problems[0] ?? '', /cxr-gateway deliveries release/);
  t.deepEqual(degraded.checks['parkedDeliveries'], { 'ris-main': 2, 'pacs-main': 1 });
  parked = [{ destination: 'ris-main', parked: 0 }];
  const ok = buildHealth(h);
  t.is(ok.status, 'ok');
  t.deepEqual(ok.problems, []);
});

test('buildHealth: a refused reload degrades (when, trigger, why) until a later reload succeeds', (t) => {
  let last: ReloadRecord | undefined;
  const h = source({ lastReload: () => last });
  t.is(buildHealth(h).status, 'ok');
  last = { at: Date.UTC(2026, 0, 2, 3, 4, 5), ok: false, trigger: 'SIGHUP', error: 'rules.0.action.pacs.0: no such' };
  const refused = buildHealth(h);
  t.is(refused.status, 'degraded');
  t.deepEqual(refused.problems, [
    'the configuration reload of 2026-01-02T03:04:05.000Z (SIGHUP) was refused: rules.0.action.pacs.0: no such; ' +
      'the daemon still runs the previous configuration: fix the file and reload again',
  ]);
  last = { at: Date.UTC(2026, 0, 2, 3, 5, 0), ok: true, trigger: 'file change', error: null };
  t.is(buildHealth(h).status, 'ok');
  t.deepEqual(buildHealth(h).checks['lastReload'], last);
});

test('buildHealth: a loaded model with no live worker degrades', (t) => {
  const h = source({ models: () => [{ name: 'demo', loaded: true, backend: 'wasm', workers: 0 }] });
  t.deepEqual(buildHealth(h).problems, ["model 'demo' has no live inference worker: its studies wait"]);
});

test('metricsText: parked per destination, reload refused (0/1) and the last reload time', (t) => {
  const store = JobStore.open(path.join(mkdtempSync(path.join(os.tmpdir(), 'health-')), 'db.sqlite'));
  t.teardown(() => store.close());
  const metrics = new StoreMetrics(store.connection);
  let last: ReloadRecord | undefined;
  const h = source({ parked: () => [{ destination: 'ris-main', parked: 3 }], lastReload: () => last });
  const none = metricsText(h, metrics, undefined);
  t.regex(none, /^cxr_deliveries_parked\{destination="ris-main"\} 3$/m);
  t.regex(none, /^cxr_config_reload_refused 0$/m);
  t.regex(none, /^cxr_config_last_reload_timestamp_seconds 0$/m);
  last = { at: 1_700_000_000_500, ok: false, trigger: 'console', error: 'bad' };
  const refused = metricsText(h, metrics, undefined);
  t.regex(refused, /^cxr_config_reload_refused 1$/m);
  t.regex(refused, /^cxr_config_last_reload_timestamp_seconds 1700000000\.5$/m);
  last = { ...last, ok: true, error: null };
  t.regex(metricsText(h, metrics, undefined), /^cxr_config_reload_refused 0$/m);
});
