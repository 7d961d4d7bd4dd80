import test, { type ExecutionContext } from 'ava';
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { pacsDestinationSchema, risDestinationSchema } from '../../src/config/schema.js';
import { probeDestination } from '../../src/export/destination-probe.js';
import { freePort } from '../helpers/ports.js';

// The console's echo of a destination, against real peers: DCMTK's storescp answers C-ECHO, a closed port
// refuses, a TCP listener stands in for an MLLP RIS, folders are checked on a temp dir.

const dicom = (port: number) => ({
  kind: 'pacs' as const,
  ...pacsDestinationSchema.parse({
    type: 'dicom',
    name: 'pacs-main',
    host: '127.0.0.1',
    port,
    aeTitle: 'STORESCP',
    connectTimeoutSeconds: 5,
  }),
});

async function startStorescp(t: ExecutionContext): Promise<number> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'probe-scp-'));
  const port = await freePort();
  const child = spawn('storescp', ['--output-directory', dir, '-aet', 'STORESCP', String(port)], { stdio: 'ignore' });
  let exited = false;
  const exit = new Promise<void>((resolve) => child.once('exit', () => ((exited = true), resolve())));
  t.teardown(async () => {
    if (!exited && child.pid !== undefined) {
      process.kill(child.pid);
      await exit;
    }
  });
  const deadline = Date.now() + 10_000;
  while (!(await canConnect(port))) {
    if (exited || Date.now() > deadline) throw new Error('storescp did not start');
    await new Promise((r) => setTimeout(r, 50));
  }
  return port;
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.once('connect', () => (socket.destroy(), resolve(true)));
    socket.once('error', () => resolve(false));
  });
}

test('a DICOM PACS that answers C-ECHO: ok', async (t) => {
  const port = await startStorescp(t);
  const result = await probeDestination(dicom(port), 'CXR_GATEWAY');
  t.true(result.ok, result.detail);
  t.is(result.destination, 'pacs-main');
  t.regex(result.detail, /C-ECHO to STORESCP .* succeeded/);
});

test('a DICOM PACS on a closed port: fails with the reason', async (t) => {
  const port = await freePort();
  const result = await probeDestination(dicom(port), 'CXR_GATEWAY');
  t.false(result.ok);
  t.regex(result.detail, /C-ECHO to STORESCP at 127\.0\.0\.1:\d+ failed: .+/);
});

test('an MLLP RIS: ok when it accepts a connection, refused with a reason when nothing listens', async (t) => {
  const server = net.createServer((socket) => socket.destroy());
  await new Promise<void>((resolve) => server.listen({ host: '127.0.0.1', port: 0 }, resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const ris = (port: number) => ({
    kind: 'ris' as const,
    ...risDestinationSchema.parse({ type: 'mllp', name: 'ris-main', host: '127.0.0.1', port }),
  });
  const ok = await probeDestination(ris((server.address() as net.AddressInfo).port), 'CXR_GATEWAY');
  t.true(ok.ok, ok.detail);
  const closed = await probeDestination(ris(await freePort()), 'CXR_GATEWAY');
  t.false(closed.ok);
  t.regex(closed.detail, /connection refused/);
});

test('folders: writable is ok; missing or a file fail with the reason', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'probe-folder-'));
  const folder = (p: string) => ({
    kind: 'pacs' as const,
    ...pacsDestinationSchema.parse({ type: 'folder', name: 'pacs-folder', path: p }),
  });
  t.true((await probeDestination(folder(dir), 'CXR_GATEWAY')).ok);
  t.regex((await probeDestination(folder(path.join(dir, 'nope')), 'CXR_GATEWAY')).detail, /does not exist/);
  const file = path.join(dir, 'file');
  writeFileSync(file, 'x');
  t.regex((await probeDestination(folder(file), 'CXR_GATEWAY')).detail, /is not a folder/);
});
