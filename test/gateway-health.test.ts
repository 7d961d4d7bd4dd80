import test from 'ava';
import { readFileSync, writeFileSync } from 'node:fs';
import { parse, stringify } from 'yaml';
import { startGateway } from './helpers/gateway-process.js';
import { tinyModelDir } from './helpers/tiny-densenet.js';
import { readUntil } from './helpers/wait-until.js';

// Monitoring that tells the truth, on the real daemon: a reload refused because the file does not validate
// makes /healthz 503 with when, what triggered it and why, and /metrics says so; a good file clears it.

interface Healthz {
  status: string;
  problems: string[];
  checks: { lastReload: { ok: boolean; trigger: string; error: string | null } | null };
}

test('a reload refused by a bad file makes /healthz 503 with the reason; a good file clears it', async (t) => {
  const gateway = await startGateway({
    models: { demo: tinyModelDir() },
    inference: { workers: 1, backend: 'wasm' },
  } as never);
  t.teardown(() => gateway.stop());
  const ready = await gateway.waitForLog((l) => l.event === 'GATEWAY-7010', 'the admin port');
  const base = String(ready.url).replace('/healthz', '');
  const healthz = async () => {
    const response = await fetch(`${base}/healthz`);
    return { code: response.status, body: (await response.json()) as Healthz };
  };
  const first = await healthz();
  t.is(first.code, 200, JSON.stringify(first.body.problems));
  t.is(first.body.checks.lastReload, null);

  const good = readFileSync(gateway.configPath, 'utf8');
  const bad = parse(good) as Record<string, unknown>;
  bad['rules'] = [{ name: 'x', action: { model: 'demo', pacs: ['no-such-pacs'] } }];
  writeFileSync(gateway.configPath, stringify(bad));
  const refused = await readUntil(healthz, (h) => h.code === 503, 'the refused reload to show');
  t.is(refused.body.status, 'degraded');
  t.like(refused.body.checks.lastReload, { ok: false, trigger: 'file change' });
  const problem = refused.body.problems.find((p) => p.startsWith('the configuration reload of '));
  t.truthy(problem, JSON.stringify(refused.body.problems));
  t.regex(problem ?? '', /\(file change\) was refused: .*rules\.0\.action\.pacs\.0.*no-such-pacs/);
  t.regex(problem ?? '', /still runs the previous configuration/);
  const metrics = await (await fetch(`${base}/metrics`)).text();
  t.regex(metrics, /^cxr_config_reload_refused 1$/m);
  t.regex(metrics, /^cxr_config_last_reload_timestamp_seconds [1-9]/m);

  // The admin fixes the file: the next reload succeeds and the daemon is healthy again.
  writeFileSync(gateway.configPath, `${good}\n# fixed\n`);
  const cleared = await readUntil(healthz, (h) => h.code === 200, 'the good reload to clear it');
  t.like(cleared.body.checks.lastReload, { ok: true, trigger: 'file change' });
  t.regex(await (await fetch(`${base}/metrics`)).text(), /^cxr_config_reload_refused 0$/m);
});
