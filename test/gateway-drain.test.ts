import test from 'ava';
import { ConsoleClient } from './helpers/console-client.js';
import { addConsoleUser, runCli, startGateway, writeGatewayConfig } from './helpers/gateway-process.js';
import { tinyModelDir } from './helpers/tiny-densenet.js';
import { readUntil } from './helpers/wait-until.js';

// Drain on the real daemon: its /healthz shows the cluster part with this node; `cxr-gateway drain` (a second
// process on the same store) turns /healthz and /readyz (what a load balancer checks) 503 with the reason;
// --undo brings it back.

interface Healthz {
  status: string;
  problems: string[];
  checks: { cluster?: { node: { name: string; draining: boolean }; nodes: Array<{ name: string; alive: boolean }> } };
}

test('a drained daemon answers /healthz 503 with why, shows draining in /metrics, and is healthy again once undone', async (t) => {
  const gateway = await startGateway({
    models: { demo: tinyModelDir() },
    inference: { workers: 1, backend: 'wasm' },
    cluster: { nodeName: 'gw-drain' },
  } as never);
  t.teardown(() => gateway.stop());
  const ready = await gateway.waitForLog((l) => l.event === 'GATEWAY-7010', 'the admin port');
  const base = String(ready.url).replace('/healthz', '');
  const healthz = async () => {
    const response = await fetch(`${base}/healthz`);
    return { code: response.status, body: (await response.json()) as Healthz };
  };
  const first = await readUntil(healthz, (h) => (h.body.checks.cluster?.nodes.length ?? 0) > 0, 'the node to register');
  t.is(first.code, 200, JSON.stringify(first.body.problems));
  t.like(first.body.checks.cluster, { node: { name: 'gw-drain', draining: false } });
  t.like(first.body.checks.cluster?.nodes[0], { name: 'gw-drain', alive: true });

  t.is((await fetch(`${base}/readyz`)).status, 200);

  const drained = await runCli(['drain', '--config', gateway.configPath]);
  t.is(drained.code, 0, drained.stderr);
  t.regex(drained.stdout, /^node 'gw-drain' is draining: it still holds \d+ job\(s\) and \d+ deliver/);
  const refused = await healthz();
  t.is(refused.code, 503);
  t.true(refused.body.problems.some((p) => p.startsWith("this node 'gw-drain' is draining")));
  t.regex(await (await fetch(`${base}/metrics`)).text(), /^cxr_cluster_nodes\{state="draining"\} 1$/m);
  const notReady = await fetch(`${base}/readyz`);
  t.is(notReady.status, 503, 'the load balancer sends it no new associations');
  t.regex(((await notReady.json()) as { problems: string[] }).problems.join(), /is draining/);

  const undone = await runCli(['drain', '--undo', '--config', gateway.configPath]);
  t.is(undone.code, 0, undone.stderr);
  const back = await healthz();
  t.is(back.code, 200, JSON.stringify(back.body.problems));
  t.is((await fetch(`${base}/readyz`)).status, 200);
  t.regex(await (await fetch(`${base}/metrics`)).text(), /^cxr_cluster_nodes\{state="alive"\} 1$/m);
});

test('an admin drains the node from the console API: /readyz 503, audited as that user; undone the same way', async (t) => {
  const setup = await writeGatewayConfig({
    models: { demo: tinyModelDir() },
    inference: { workers: 1, backend: 'wasm' },
    cluster: { nodeName: 'gw-console-drain' },
  } as never);
  t.is(await addConsoleUser(setup.configPath, 'alice', 'admin', 'correct horse battery staple'), 0);
  const gateway = await startGateway({}, setup);
  t.teardown(() => gateway.stop());
  const ready = await gateway.waitForLog((l) => l.event === 'GATEWAY-7010', 'the admin port');
  const base = new URL(String(ready.url)).origin;
  const api = new ConsoleClient(base);
  await api.logIn('alice', 'correct horse battery staple');
  const path = '/api/v1/cluster/nodes/{name}/drain';

  const drained = await api.post(path, { name: 'gw-console-drain' }, { draining: true });
  t.is(drained.status, 200, drained.bytes.toString());
  t.like(drained.json, { node: 'gw-console-drain', draining: true });
  t.is((await fetch(`${base}/readyz`)).status, 503);
  const audit = await api.get<{ items: Array<{ action: string; user: string; target: string }> }>(
    '/api/v1/audit',
    {},
    'action=node.drain',
  );
  t.like(audit.json.items[0], { action: 'node.drain', user: 'alice', target: 'gw-console-drain' });
  t.is((await api.post(path, { name: 'gw-nobody' }, { draining: true })).status, 404);

  const undone = await api.post(path, { name: 'gw-console-drain' }, { draining: false });
  t.like(undone.json, { draining: false });
  t.is((await fetch(`${base}/readyz`)).status, 200);
});
