// The daemon end to end: with the audit repository down, C-STOREs through the real SCP still succeed and audit rows
// (here written by the CLI, a second process on the same job store) wait, /healthz says so; once a real rsyslogd
// listens, the waiting rows arrive as DICOM audit messages.
import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { checkAtna, child } from '../helpers/atna-check.js';
import { storescu } from '../helpers/dcmtk.js';
import { writeImageFile } from '../helpers/dicom-factory.js';
import { addConsoleUser, startGateway } from '../helpers/gateway-process.js';
import { freePort } from '../helpers/ports.js';
import { startRsyslog } from '../helpers/rsyslog.js';
import { tinyModelDir } from '../helpers/tiny-densenet.js';
import { waitUntil } from '../helpers/wait-until.js';

interface Healthz {
  status: string;
  problems: string[];
}

test('repository down: C-STOREs succeed, audit rows wait (/healthz degraded); repository up: they arrive as audit messages', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'cxr-audit-daemon-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const ports = { udpPort: await freePort(), tcpPort: await freePort() };
  const gateway = await startGateway({
    models: { demo: tinyModelDir() },
    inference: { workers: 1, backend: 'wasm' },
    audit: { syslog: { transport: 'tcp', host: '127.0.0.1', port: ports.tcpPort }, enterpriseSiteId: 'Test-Site' },
  } as never);
  t.teardown(() => gateway.stop());
  await gateway.waitForLog((l) => l.event === 'GATEWAY-7501', 'the audit forwarder to start');
  const ready = await gateway.waitForLog((l) => l.event === 'GATEWAY-7010', 'the admin port');
  const base = String(ready.url).replace('/healthz', '');

  for (const name of ['alice', 'bob'])
    t.is(await addConsoleUser(gateway.configPath, name, 'viewer', 'a long enough password'), 0);
  const image = await writeImageFile(dir);
  const store = await storescu(gateway.port, [image.path]);
  t.is(store.code, 0, store.stderr);

  await gateway.waitForLog((l) => l.event === 'GATEWAY-7502', 'the forwarder to find the repository down', 30_000);
  // /healthz, polled until the forwarder's backlog problem names both rows (no sleep proves an absence here).
  let health: Healthz = { status: '', problems: [] };
  const deadline = Date.now() + 30_000;
  // Two user rows from the CLI, and the association and the study it received from the SCP (issue 17's DICOM events).
  const waiting = () =>
    Math.max(0, ...health.problems.map((p) => Number(/(\d+) audit messages wait/.exec(p)?.[1] ?? 0)));
  while (waiting() < 4 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    health = (await (await fetch(`${base}/healthz`)).json()) as Healthz;
  }
  t.is(health.status, 'degraded');
  t.true(
    health.problems.some((p) =>
      /the audit repository tcp:\/\/127\.0\.0\.1:\d+ has been unreachable since .*: \d+ audit messages wait/.test(p),
    ),
    JSON.stringify(health.problems),
  );

  const rsyslog = await startRsyslog(dir, ports);
  t.teardown(() => rsyslog.stop());
  await waitUntil(() => rsyslog.messages().length >= 4, 'the waiting audit messages to arrive', 60_000);
  const got = rsyslog.messages();
  t.like(got[0], { pri: '85', app: 'cxr-gateway', msgid: 'IHE+RFC-3881' });
  const checks = checkAtna(got.map((m) => m.msg.replace(/^\uFEFF/, '')));
  for (const c of checks) t.deepEqual(c.errors, []);
  const objects = checks.map((c) => child(c.tree, 'ParticipantObjectIdentification')?.attrs.ParticipantObjectID);
  t.deepEqual(
    objects.filter((o) => o?.startsWith('user ')),
    ['user alice', 'user bob'],
  );
  t.true(objects.includes(image.studyInstanceUid), JSON.stringify(objects));
  t.like(child(checks[0]?.tree, 'AuditSourceIdentification')?.attrs, {
    AuditSourceID: 'CXR_GATEWAY',
    AuditEnterpriseSiteID: 'Test-Site',
  });
  await gateway.waitForLog((l) => l.event === 'GATEWAY-7503', 'the forwarder to report the repository back', 30_000);
});
