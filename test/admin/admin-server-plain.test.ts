// Without the console's backends the admin port is what it was: /healthz and /metrics, nothing else; a failing
// health source is a 500 with the reason and a GATEWAY-7011 line.

import test from 'ava';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { AdminServer } from '../../src/admin/admin-server.js';
import { createLogger } from '../../src/logging/logger.js';
import { JobStore } from '../../src/store/job-store.js';
import { StoreMetrics } from '../../src/store/store-metrics.js';

test('without console and auth backends only /healthz and /metrics answer; a health failure is a logged 500', async (t) => {
  const store = JobStore.open(path.join(mkdtempSync(path.join(os.tmpdir(), 'admin-plain-')), 'db.sqlite'));
  t.teardown(() => store.close());
  const lines: Array<Record<string, unknown>> = [];
  let storeOk = (): boolean => true;
  const admin = new AdminServer({
    host: '127.0.0.1',
    port: 0,
    metrics: new StoreMetrics(store.connection),
    logger: createLogger({
      level: 'error',
      format: 'json',
      stream: new Writable({
        write: (chunk: Buffer, _e, cb) => {
          lines.push(JSON.parse(chunk.toString('utf8')) as Record<string, unknown>);
          cb();
        },
      }),
    }),
    health: {
      storeOk: () => storeOk(),
      freeDiskBytes: () => 10 * 1048576,
      minFreeDiskBytes: 1048576,
      models: () => [],
      dicomListening: () => true,
    },
  });
  const { port } = await admin.start();
  t.teardown(() => admin.stop());
  const base = `http://127.0.0.1:${port}`;
  const health = await fetch(`${base}/healthz`);
  t.is(health.status, 200);
  t.is(health.headers.get('cache-control'), 'no-store');
  t.is((await fetch(`${base}/metrics`)).status, 200);
  for (const url of ['/login', '/api/v1/session', '/api/openapi.json', '/']) {
    const response = await fetch(`${base}${url}`);
    t.is(response.status, 404, url);
    t.is(await response.text(), 'try /healthz or /metrics\n', url);
  }
  storeOk = () => {
    throw new Error('database is locked');
  };
  const failed = await fetch(`${base}/healthz`);
  t.is(failed.status, 500);
  t.is(await failed.text(), 'database is locked\n');
  t.like(
    lines.find((l) => l.event === 'GATEWAY-7011'),
    { url: '/healthz', error: 'database is locked' },
  );
});
