import test from 'ava';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { configSchema, type GatewayConfig } from '../src/config/schema.js';
import { GatewayError } from '../src/errors.js';
import { Gateway } from '../src/gateway.js';
import { createLogger } from '../src/logging/logger.js';
import { freePort } from './helpers/ports.js';
import { tinyModelDir } from './helpers/tiny-densenet.js';

// explain.target naming a class the model lacks passes the schema (it cannot know the classes) but would fail every
// image at run time: the gateway refuses it at start, before any worker starts, and at reload, keeping what runs.

const quiet = () =>
  createLogger({ level: 'error', format: 'json', stream: new Writable({ write: (_c, _e, cb) => cb() }) });

async function config(target: string, modelDir: string): Promise<GatewayConfig> {
  return configSchema.parse({
    dicom: { host: '127.0.0.1', port: await freePort() },
    storage: { dataDir: mkdtempSync(path.join(os.tmpdir(), 'explain-target-')), minFreeDiskMB: 1 },
    admin: { enabled: false },
    models: { tiny: modelDir },
    inference: { defaultModel: 'tiny', workers: 1, backend: 'wasm' },
    explain: { target },
    rules: [],
  });
}

test('start is refused with EXPLAIN_TARGET_UNKNOWN when explain.target is not a class of the model', async (t) => {
  const gateway = new Gateway(await config('Cardiomegaly', tinyModelDir()), quiet());
  t.teardown(() => gateway.stop());
  await t.throwsAsync(gateway.start(), { instanceOf: GatewayError, code: 'EXPLAIN_TARGET_UNKNOWN' });
});

test('a reload naming a class the model lacks is refused (EXPLAIN_TARGET_UNKNOWN, recorded); a class it has is applied', async (t) => {
  const dir = tinyModelDir();
  const running = await config('predicted', dir);
  const gateway = new Gateway(running, quiet());
  t.teardown(() => gateway.stop());
  await gateway.start();
  const refused = await gateway.reload({ ...running, explain: { ...running.explain, target: 'Cardiomegaly' } }, 'test');
  t.like(refused, { ok: false, trigger: 'test' });
  t.regex(refused.error ?? '', /Cardiomegaly/);
  t.deepEqual(gateway.lastReload(), refused);
  const applied = await gateway.reload({ ...running, explain: { ...running.explain, target: 'pneumonia' } }, 'test');
  t.like(applied, { ok: true, error: null });
  t.deepEqual(gateway.lastReload(), applied);
});
