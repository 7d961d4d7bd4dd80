import test from 'ava';
import { mkdtempSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { configSchema, type GatewayConfig } from '../src/config/schema.js';
import { Gateway, storeFileOf } from '../src/gateway.js';
import { createLogger } from '../src/logging/logger.js';
import { JobStore } from '../src/store/job-store.js';
import { NodeRegistry } from '../src/store/nodes.js';
import { freePort } from './helpers/ports.js';
import { tinyModelDir } from './helpers/tiny-densenet.js';

// cluster.roles in the daemon (issue 20): a node without `receive` opens no DICOM port and is healthy without one;
// every node writes its row (name, roles) in the store at start.

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

async function config(roles: string[]): Promise<GatewayConfig> {
  return configSchema.parse({
    dicom: { host: '127.0.0.1', port: await freePort() },
    storage: { dataDir: mkdtempSync(path.join(os.tmpdir(), 'gateway-roles-')), minFreeDiskMB: 1 },
    admin: { host: '127.0.0.1', port: 0 },
    models: { tiny: tinyModelDir() },
    inference: { defaultModel: 'tiny', workers: 1, backend: 'wasm' },
    destinations: { pacs: [], ris: [] },
    rules: [],
    cluster: { nodeName: 'gw-analysis', roles },
  });
}

/** Whether something accepts TCP connections on 127.0.0.1:port (answered by the connect or its refusal). */
function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

test('an analyze+deliver node runs no DICOM listener, is healthy without one, and is listed with its roles', async (t) => {
  const running = await config(['analyze', 'deliver']);
  const { logger, lines } = capture();
  const gateway = new Gateway(running, logger);
  t.teardown(() => gateway.stop());
  t.is(await gateway.start(), undefined);
  t.false(await accepts(running.dicom.port), 'no listener on dicom.port');
  t.false(lines.some((l) => l['event'] === 'DIMSE-1000'));
  t.like(
    lines.find((l) => l['event'] === 'PIPELINE-4014'),
    { node: 'gw-analysis', roles: ['analyze', 'deliver'] },
  );
  const url = String(lines.find((l) => l['event'] === 'GATEWAY-7010')?.['url']);
  const health = await fetch(url);
  const body = (await health.json()) as { problems: string[]; checks: { dicomListening: unknown } };
  t.is(health.status, 200, JSON.stringify(body.problems));
  const store = JobStore.openReadOnly(storeFileOf(running));
  t.teardown(() => store.close());
  t.like(new NodeRegistry(store.connection).list(), [{ name: 'gw-analysis', roles: ['analyze', 'deliver'] }]);
});

test('a receive node listens on dicom.port', async (t) => {
  const running = await config(['receive']);
  const { logger } = capture();
  const gateway = new Gateway(running, logger);
  t.teardown(() => gateway.stop());
  t.like(await gateway.start(), { port: running.dicom.port });
  t.true(await accepts(running.dicom.port));
});

test('a deliver node loads no model (ANALYSIS-5018) and its /healthz lists none, healthy', async (t) => {
  const running = await config(['deliver']);
  const { logger, lines } = capture();
  const gateway = new Gateway(running, logger);
  t.teardown(() => gateway.stop());
  await gateway.start();
  t.like(
    lines.find((l) => l['event'] === 'ANALYSIS-5018'),
    { level: 'info', roles: ['deliver'] },
  );
  t.false(
    lines.some((l) => l['event'] === 'ANALYSIS-5001'),
    'no inference pool started',
  );
  const url = String(lines.find((l) => l['event'] === 'GATEWAY-7010')?.['url']);
  const health = await fetch(url);
  const body = (await health.json()) as { problems: string[]; checks: { models: unknown[] } };
  t.is(health.status, 200, JSON.stringify(body.problems));
  t.deepEqual(body.checks.models, []);
});

test('an analyze node loads its models and /healthz lists them', async (t) => {
  const running = await config(['analyze']);
  const { logger, lines } = capture();
  const gateway = new Gateway(running, logger);
  t.teardown(() => gateway.stop());
  await gateway.start();
  t.false(lines.some((l) => l['event'] === 'ANALYSIS-5018'));
  const url = String(lines.find((l) => l['event'] === 'GATEWAY-7010')?.['url']);
  const body = (await (await fetch(url)).json()) as { checks: { models: Array<{ name: string; loaded: boolean }> } };
  t.like(body.checks.models, [{ name: 'tiny', loaded: true }]);
});
