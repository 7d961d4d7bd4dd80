import test from 'ava';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { writeImageFile } from '../helpers/dicom-factory.js';
import { storescu } from '../helpers/dcmtk.js';
import { startGateway } from '../helpers/gateway-process.js';
import { tinyModelDir } from '../helpers/tiny-densenet.js';

test('healthz reports store, disk, models and listener; metrics count what arrived and time each stage', async (t) => {
  const gateway = await startGateway({
    models: { demo: tinyModelDir() },
    inference: { workers: 1, backend: 'wasm' },
  } as never);
  t.teardown(() => gateway.stop());
  const ready = await gateway.waitForLog((l) => l.event === 'GATEWAY-7010', 'the admin port');
  const base = String(ready.url).replace('/healthz', '');
  const health = await fetch(`${base}/healthz`);
  t.is(health.status, 200);
  const body = (await health.json()) as {
    status: string;
    checks: {
      models: Array<{ name: string; loaded: boolean; backend: string }>;
      stages: Record<string, { state: string }>;
    };
  };
  t.is(body.status, 'ok');
  t.like(body.checks.models[0], { name: 'demo', loaded: true });
  // engine/device: onnxruntime/cpu where ONNX Runtime starts (inference.engine auto), else TF.js on wasm.
  const backend = body.checks.models[0]?.backend ?? '';
  t.regex(backend, /^(onnxruntime\/cpu|tfjs\/wasm)$/);
  // Built from every stage's status(), in start order, each running.
  t.deepEqual(Object.keys(body.checks.stages), [
    'store',
    'analysis',
    'export',
    'pipeline',
    'assembly',
    'dicom-listener',
    'maintenance',
    'admin',
  ]);
  t.true(Object.values(body.checks.stages).every((s) => s.state === 'running'));

  const dir = mkdtempSync(path.join(os.tmpdir(), 'metrics-'));
  t.is((await storescu(gateway.port, [(await writeImageFile(dir, {})).path])).code, 0);
  const metrics = await (await fetch(`${base}/metrics`)).text();
  t.regex(metrics, /^# TYPE cxr_instances_received_total counter$/m);
  t.regex(metrics, /^cxr_instances_received_total 1$/m);
  t.true(metrics.split('\n').includes(`cxr_model_loaded{model="demo",backend="${backend}"} 1`));

  // Once the study went all the way, every stage it passed has one observation and a positive duration.
  await gateway.waitForLog((l) => l.event === 'EXPORT-6002', 'the RIS report', 60_000);
  const after = await (await fetch(`${base}/metrics`)).text();
  t.regex(after, /^# TYPE cxr_stage_seconds summary$/m);
  for (const stage of ['decode', 'explain', 'write', 'pacs', 'ris']) {
    t.regex(after, new RegExp(`^cxr_stage_seconds_count\\{stage="${stage}"\\} 1$`, 'm'), stage);
    const sum = Number(new RegExp(`^cxr_stage_seconds_sum\\{stage="${stage}"\\} (\\S+)$`, 'm').exec(after)?.[1]);
    t.true(sum > 0, `${stage} took ${sum} s`);
  }
});

test('healthz answers 503 with the reason when a configured model is missing', async (t) => {
  const gateway = await startGateway({ models: { demo: '/nonexistent/model' } } as never);
  t.teardown(() => gateway.stop());
  const ready = await gateway.waitForLog((l) => l.event === 'GATEWAY-7010', 'the admin port');
  const response = await fetch(String(ready.url));
  t.is(response.status, 503);
  const body = (await response.json()) as { problems: string[] };
  t.deepEqual(body.problems, ["model 'demo' is not loaded: its studies wait"]);
  // Said loudly at start: at error level, naming the model, the folder and what is wrong with it.
  const loud = gateway.logs.find((l) => l.event === 'ANALYSIS-5006');
  t.like(loud, { level: 'error', model: 'demo', dir: '/nonexistent/model' });
  t.regex(String(loud?.why), /models\.demo: directory \/nonexistent\/model does not exist/);
  t.regex(String(loud?.message), /NOT processed/);
});

test('SIGHUP reloads valid rules and keeps the running config when the file is bad', async (t) => {
  const { writeFileSync, readFileSync } = await import('node:fs');
  const gateway = await startGateway();
  t.teardown(() => gateway.stop());
  const original = readFileSync(gateway.configPath, 'utf8');
  writeFileSync(
    gateway.configPath,
    `${original}\nrules:\n  - name: nothing-at-all\n    action: { model: not-a-model }\n`,
  );
  process.kill(gateway.pid, 'SIGHUP');
  const refused = await gateway.waitForLog((l) => l.event === 'CONFIG-9002', 'the refusal');
  t.regex(String(refused.error), /names model 'not-a-model', which is not in models/);
  writeFileSync(gateway.configPath, `${original}\nrules:\n  - name: ignore-everything\n    action: { ignore: true }\n`);
  process.kill(gateway.pid, 'SIGHUP');
  await gateway.waitForLog((l) => l.event === 'CONFIG-9004', 'the reload');
  t.pass();
});
