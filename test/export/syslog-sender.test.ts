import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { GatewayError } from '../../src/errors.js';
import { atnaMessage, type AuditEventRow } from '../../src/reporting/atna-message.js';
import { formatSyslog, octetFrame, SyslogSender, UDP_MAX_BYTES } from '../../src/export/syslog-sender.js';
import { checkAtna } from '../helpers/atna-check.js';
import { freePort } from '../helpers/ports.js';
import { startRsyslog, type ReceivedSyslog } from '../helpers/rsyslog.js';
import { waitUntil } from '../helpers/wait-until.js';

const HEADER = { facility: 10, appName: 'cxr-gateway', hostname: 'gw.example.org' };
const SOURCE = { sourceId: 'CXR_GATEWAY', aeTitle: 'CXR_GATEWAY' };

function tempDir(t: { teardown(fn: () => void): void }): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'cxr-syslog-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function received(id: number): AuditEventRow {
  return {
    id,
    at: Date.UTC(2026, 11, 6, 14, 0, id),
    category: 'dicom',
    action: 'study.received',
    user: 'MODALITY1',
    role: null,
    address: '127.0.0.1',
    target: `study 1.2.3.${id}`,
    outcome: 'success',
    after: JSON.stringify({
      studyInstanceUid: `1.2.3.${id}`,
      sopClassUids: ['1.2.840.10008.5.1.4.1.1.1.1'],
      instances: 1,
      callingAe: 'MODALITY1',
      calledAe: 'CXR_GATEWAY',
      address: '127.0.0.1',
      associationId: 'a1',
    }),
    detail: id % 2 === 0 ? 'détail non-ASCII ✓' : null,
  };
}

function message(id: number): Buffer {
  return formatSyslog(
    {
      at: Date.UTC(2026, 11, 6, 14, 0, id),
      severity: 5,
      msgId: 'IHE+RFC-3881',
      sequenceId: id,
      body: atnaMessage(received(id), SOURCE),
    },
    HEADER,
  );
}

/** What rsyslog parsed must be the RFC 5424 fields we wrote and a MSG of BOM + a valid audit message. */
function assertReceived(t: import('ava').ExecutionContext, got: ReceivedSyslog[], ids: number[]): void {
  t.deepEqual(
    got.map((m) => m.sd),
    ids.map((id) => `[meta sequenceId="${id}"]`),
  );
  for (const m of got) {
    t.like(m, {
      pri: '85',
      hostname: 'gw.example.org',
      app: 'cxr-gateway',
      msgid: 'IHE+RFC-3881',
      procid: String(process.pid),
    });
    t.true(m.msg.startsWith('\uFEFF'), 'MSG starts with a BOM (RFC 5424 6.4: UTF-8)');
  }
  const checks = checkAtna(got.map((m) => m.msg.replace(/^\uFEFF/, '')));
  for (const c of checks) t.deepEqual(c.errors, []);
  t.deepEqual(
    checks.map(
      (c) => c.tree?.children.find((x) => x.tag === 'ParticipantObjectIdentification')?.attrs.ParticipantObjectID,
    ),
    ids.map((id) => `1.2.3.${id}`),
  );
}

test('formatSyslog writes the RFC 5424 header, [meta sequenceId] and a BOM before the UTF-8 body', (t) => {
  const text = formatSyslog(
    { at: Date.UTC(2026, 0, 2, 3, 4, 5, 6), severity: 4, msgId: 'IHE+RFC-3881', sequenceId: 42, body: '<a>é</a>' },
    { facility: 13, appName: 'cxr gateway', hostname: '' },
  ).toString('utf8');
  t.is(
    text,
    `<108>1 2026-01-02T03:04:05.006Z - cxrgateway ${process.pid} IHE+RFC-3881 [meta sequenceId="42"] \uFEFF<a>é</a>`,
  );
});

test('octetFrame counts bytes, not characters', (t) => {
  t.is(octetFrame(Buffer.from('é✓', 'utf8')).toString('utf8'), '5 é✓');
});

test('UDP: a real rsyslogd receives each message as one datagram with every RFC 5424 field and a valid audit message', async (t) => {
  const dir = tempDir(t);
  const rsyslog = await startRsyslog(dir);
  t.teardown(() => rsyslog.stop());
  const sender = new SyslogSender({ transport: 'udp', host: '127.0.0.1', port: rsyslog.udpPort });
  t.teardown(() => sender.close());
  for (const id of [1, 2, 3]) await sender.send(message(id));
  await waitUntil(() => rsyslog.messages().length >= 3, 'rsyslog to write 3 messages', 15_000);
  assertReceived(t, rsyslog.messages(), [1, 2, 3]);
});

test('TCP: a real rsyslogd receives octet-counted frames, in order, over one connection', async (t) => {
  const dir = tempDir(t);
  const rsyslog = await startRsyslog(dir);
  t.teardown(() => rsyslog.stop());
  const sender = new SyslogSender({ transport: 'tcp', host: '127.0.0.1', port: rsyslog.tcpPort });
  t.teardown(() => sender.close());
  const ids = [10, 11, 12, 13, 14, 15];
  for (const id of ids) await sender.send(message(id));
  await waitUntil(() => rsyslog.messages().length >= ids.length, 'rsyslog to write 6 messages', 15_000);
  assertReceived(t, rsyslog.messages(), ids);
});

test('TCP: a receiver that is down fails the send with AUDIT_SYSLOG_UNREACHABLE; once it is back the sender reconnects', async (t) => {
  const dir = tempDir(t);
  const port = await freePort();
  const sender = new SyslogSender({ transport: 'tcp', host: '127.0.0.1', port, timeoutMs: 2_000 });
  t.teardown(() => sender.close());
  const error = await t.throwsAsync(sender.send(message(1)));
  t.is((error as GatewayError).code, 'AUDIT_SYSLOG_UNREACHABLE');

  const rsyslog = await startRsyslog(dir, { udpPort: await freePort(), tcpPort: port });
  t.teardown(() => rsyslog.stop());
  await sender.send(message(2));
  await waitUntil(() => rsyslog.messages().length >= 1, 'rsyslog to write the message', 15_000);
  assertReceived(t, rsyslog.messages(), [2]);

  // The receiver goes away under an open connection: a later send fails (never hangs), then one after the restart works.
  await rsyslog.stop();
  await waitUntil(
    () => false === sender['stream']?.writable || sender['stream'] === undefined,
    'the sender to see the close',
    5_000,
  );
  await t.throwsAsync(sender.send(message(3)), { instanceOf: GatewayError });
  const again = await startRsyslog(dir, { udpPort: await freePort(), tcpPort: port });
  t.teardown(() => again.stop());
  await sender.send(message(4));
  await waitUntil(() => again.messages().length >= 2, 'rsyslog to write the message after the restart', 15_000);
  t.deepEqual(
    again.messages().map((m) => m.sd),
    ['[meta sequenceId="2"]', '[meta sequenceId="4"]'],
  );
});

test('UDP: a message larger than one datagram is refused as AUDIT_MESSAGE_TOO_LARGE, not cut', async (t) => {
  const sender = new SyslogSender({ transport: 'udp', host: '127.0.0.1', port: await freePort() });
  t.teardown(() => sender.close());
  const error = await t.throwsAsync(sender.send(Buffer.alloc(UDP_MAX_BYTES + 1, 0x41)));
  t.is((error as GatewayError).code, 'AUDIT_MESSAGE_TOO_LARGE');
});
