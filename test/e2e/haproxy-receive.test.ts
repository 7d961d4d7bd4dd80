// Two receive nodes behind Debian's HAProxy, with the sample config (docs/haproxy-cxr-gateway.cfg) bound to
// loopback ports: modalities (storescu) send to HAProxy's one port and both nodes receive; `cxr-gateway drain`
// turns a node's /readyz 503, HAProxy marks it down, and every later association goes to the other node.
import test from 'ava';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { packageRoot } from '../../src/reporting/package-root.js';
import { storescu } from '../helpers/dcmtk.js';
import { writeImageFile } from '../helpers/dicom-factory.js';
import { runCli, startGateway, type GatewayUnderTest } from '../helpers/gateway-process.js';
import { freePort } from '../helpers/ports.js';

const HAPROXY = ['/usr/sbin/haproxy', '/usr/bin/haproxy'].find((p) => existsSync(p));

/** `show stat` over HAProxy's admin socket: each server of the backend and its status (UP, DOWN...). */
function serverStates(socket: string): Promise<Record<string, string>> {
  return new Promise((resolve, reject) => {
    let text = '';
    const c = net.connect(socket, () => c.end('show stat\n'));
    c.on('data', (d: Buffer) => (text += d.toString()));
    c.on('error', reject);
    c.on('end', () => {
      const states: Record<string, string> = {};
      for (const line of text.split('\n')) {
        const f = line.split(',');
        if (f[0] === 'cxr_receive' && f[1] !== 'BACKEND' && f[1] !== undefined) states[f[1]] = f[17] ?? '';
      }
      resolve(states);
    });
  });
}

async function until(what: string, ok: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const stored = (g: GatewayUnderTest) => g.logs.filter((l) => l.event === 'DIMSE-1020').length;

test('HAProxy spreads associations over two receive nodes, and sends none to a drained one', async (t) => {
  if (HAPROXY === undefined)
    throw new Error("Debian's haproxy is not installed (apt-get install haproxy; .ci/run installs it)");
  const nodes = await Promise.all(
    ['gw-1', 'gw-2'].map((name) => startGateway({ cluster: { nodeName: name, roles: ['receive'] } } as never)),
  );
  t.teardown(() => Promise.all(nodes.map((g) => g.stop())));
  const adminPorts = await Promise.all(
    nodes.map(async (g) => {
      const ready = await g.waitForLog((l) => l.event === 'GATEWAY-7010', 'the admin port');
      return new URL(String(ready.url)).port;
    }),
  );
  const dir = mkdtempSync(path.join(os.tmpdir(), 'haproxy-e2e-'));
  const front = await freePort();
  const socket = path.join(dir, 'admin.sock');
  // The sample as shipped, on loopback ports, in the foreground, with checks every 200 ms instead of 2 s.
  const sample = readFileSync(path.join(packageRoot(), 'docs/haproxy-cxr-gateway.cfg'), 'utf8');
  const cfg = sample
    .replace(/^\s*(user|group) haproxy$|^\s*daemon$|^\s*log \/dev\/log.*$/gm, '')
    .replace('maxconn 2000', `maxconn 2000\n    stats socket ${socket} level admin`)
    .replace('bind :11112', `bind 127.0.0.1:${front}`)
    .replace('inter 2s', 'inter 200ms')
    .replace(/^\s*server .*$/gm, '')
    .concat(nodes.map((g, i) => `    server gw-${i + 1} 127.0.0.1:${g.port} port ${adminPorts[i]}\n`).join(''));
  const cfgPath = path.join(dir, 'haproxy.cfg');
  writeFileSync(cfgPath, cfg);
  const haproxy = spawn(HAPROXY, ['-db', '-f', cfgPath], { stdio: ['ignore', 'ignore', 'pipe'] });
  let haproxyErr = '';
  haproxy.stderr.on('data', (d: Buffer) => (haproxyErr += d.toString()));
  const haproxyExit = new Promise((resolve) => haproxy.once('exit', resolve));
  t.teardown(async () => {
    if (haproxy.exitCode === null) haproxy.kill('SIGTERM');
    await haproxyExit;
  });
  await until('both servers up', async () => {
    if (haproxy.exitCode !== null) throw new Error(`haproxy exited: ${haproxyErr}`);
    if (!existsSync(socket)) return false;
    const s = await serverStates(socket);
    return s['gw-1'] === 'UP' && s['gw-2'] === 'UP';
  });

  const send = async () => {
    const file = await writeImageFile(dir, { modality: 'DX' });
    const sent = await storescu(front, [file.path]);
    t.is(sent.code, 0, sent.stderr);
  };
  const total = () => stored(nodes[0]!) + stored(nodes[1]!);
  // The nodes' log lines arrive through pipes: wait for all of them before counting who stored what.
  for (let i = 0; i < 4; i += 1) await send();
  await until('4 instances stored', () => Promise.resolve(total() === 4));
  t.true(stored(nodes[0]!) > 0 && stored(nodes[1]!) > 0, `both receive: ${stored(nodes[0]!)} + ${stored(nodes[1]!)}`);

  const drained = await runCli(['drain', '--config', nodes[0]!.configPath]);
  t.is(drained.code, 0, drained.stderr);
  await until('gw-1 marked down', async () => (await serverStates(socket))['gw-1']?.startsWith('DOWN') ?? false);
  const before = stored(nodes[0]!);
  for (let i = 0; i < 3; i += 1) await send();
  await until('7 instances stored', () => Promise.resolve(total() === 7));
  t.is(stored(nodes[0]!), before, 'the drained node got no new association');
});
