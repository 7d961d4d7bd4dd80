import test, { type ExecutionContext } from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { GatewayError } from '../../src/errors.js';
import type { Logger } from '../../src/logging/logger.js';
import { AuditForwarder, type SyslogPort } from '../../src/export/audit-forwarder.js';
import { SyslogSender } from '../../src/export/syslog-sender.js';
import { AuditForwarding, AuditTrail, type AuditRecord } from '../../src/store/audit-trail.js';
import { JobStore } from '../../src/store/job-store.js';
import { checkAtna } from '../helpers/atna-check.js';
import { freePort } from '../helpers/ports.js';
import { startRsyslog } from '../helpers/rsyslog.js';
import { waitUntil } from '../helpers/wait-until.js';

interface Line {
  level: string;
  message: string;
  fields: Record<string, unknown>;
}

function memoryLogger(): { logger: Logger; lines: Line[] } {
  const lines: Line[] = [];
  const at = (level: string) => (message: string, fields?: Record<string, unknown>) =>
    lines.push({ level, message, fields: fields ?? {} });
  return { logger: { error: at('error'), warn: at('warn'), info: at('info'), debug: at('debug') }, lines };
}

function setup(t: ExecutionContext): { dir: string; store: JobStore; trail: AuditTrail; forwarding: AuditForwarding } {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'cxr-audit-fwd-'));
  const store = JobStore.open(path.join(dir, 'jobs.sqlite'));
  t.teardown(() => {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return {
    dir,
    store,
    trail: new AuditTrail(store.connection),
    forwarding: new AuditForwarding(store.connection, 'syslog'),
  };
}

function studyReceived(n: number): AuditRecord {
  return {
    category: 'dicom',
    action: 'study.received',
    user: 'MODALITY1',
    role: null,
    address: '127.0.0.1',
    target: `study 1.2.3.${n}`,
    outcome: 'success',
    after: {
      studyInstanceUid: `1.2.3.${n}`,
      sopClassUids: ['1.2.840.10008.5.1.4.1.1.1.1'],
      instances: 1,
      callingAe: 'MODALITY1',
      calledAe: 'CXR_GATEWAY',
      address: '127.0.0.1',
      associationId: `a${n}`,
    },
  };
}

/** A sender whose sends wait until the test lets them through (or fails them). */
class GatedSender implements SyslogPort {
  readonly description = 'test://gated';
  readonly sent: string[] = [];
  private gates: Array<{ message: Buffer; resolve: () => void; reject: (e: Error) => void }> = [];
  open = false;
  closed = 0;

  send(message: Buffer): Promise<void> {
    if (this.open) {
      this.sent.push(message.toString('utf8'));
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => this.gates.push({ message, resolve, reject }));
  }

  get waiting(): number {
    return this.gates.length;
  }

  release(): void {
    this.open = true;
    for (const g of this.gates.splice(0)) {
      this.sent.push(g.message.toString('utf8'));
      g.resolve();
    }
  }

  fail(error: Error): void {
    for (const g of this.gates.splice(0)) g.reject(error);
  }

  close(): void {
    this.closed += 1;
    this.fail(new GatewayError('AUDIT_SYSLOG_UNREACHABLE', 'closed'));
  }
}

const sequenceIds = (frames: string[]) => frames.map((f) => Number(f.match(/\[meta sequenceId="(\d+)"\]/)?.[1]));

function forwarder(
  forwarding: AuditForwarding,
  sender: SyslogPort,
  logger: Logger,
  extra: Partial<ConstructorParameters<typeof AuditForwarder>[0]> = {},
): AuditForwarder {
  return new AuditForwarder({
    forwarding,
    sender,
    logger,
    header: { facility: 10, appName: 'cxr-gateway', hostname: 'gw' },
    source: { sourceId: 'CXR_GATEWAY', aeTitle: 'CXR_GATEWAY' },
    pollMs: 10,
    retryInitialMs: 20,
    retryMaxMs: 100,
    ...extra,
  });
}

test('recording never waits on the repository: rows recorded while a send hangs are local inserts, sent later in order, once', async (t) => {
  const { trail, forwarding, store } = setup(t);
  const sender = new GatedSender();
  const { logger } = memoryLogger();
  const fwd = forwarder(forwarding, sender, logger);
  await fwd.start();
  t.teardown(() => fwd.stop(Date.now()));
  const first = trail.record(studyReceived(0), Date.now());
  await waitUntil(() => sender.waiting === 1, 'the forwarder to be sending the first row');
  // The send hangs; recording goes on, each record() returning its id at once (a synchronous INSERT).
  const ids = [first];
  for (let n = 1; n <= 50; n += 1) ids.push(trail.record(studyReceived(n), Date.now()));
  t.is(sender.waiting, 1);
  t.like(fwd.status().figures, { waiting: 51 });
  sender.release();
  await waitUntil(() => sender.sent.length === 51 && fwd.status().figures?.waiting === 0, 'every row sent');
  t.deepEqual(sequenceIds(sender.sent), ids);
  await fwd.stop(Date.now() + 1_000);

  // A restart resumes at the cursor: nothing is sent again.
  const again = new GatedSender();
  again.open = true;
  const next = forwarder(new AuditForwarding(store.connection, 'syslog'), again, logger);
  await next.start();
  t.teardown(() => next.stop(Date.now()));
  const late = trail.record(studyReceived(99), Date.now());
  await waitUntil(() => again.sent.length === 1, 'the new row sent');
  t.deepEqual(sequenceIds(again.sent), [late]);
});

test('a channel sends the rows from its first configuration on, not the history before it', async (t) => {
  const { trail, forwarding } = setup(t);
  trail.record(studyReceived(1), 1);
  trail.record(studyReceived(2), 2);
  const sender = new GatedSender();
  sender.open = true;
  const { logger } = memoryLogger();
  const fwd = forwarder(forwarding, sender, logger);
  await fwd.start();
  t.teardown(() => fwd.stop(Date.now()));
  const id = trail.record(studyReceived(3), 3);
  await waitUntil(() => sender.sent.length === 1, 'the new row sent');
  t.deepEqual(sequenceIds(sender.sent), [id]);
});

test('a message too large for its transport is skipped with an error line, and the rows after it still go', async (t) => {
  const { trail, forwarding } = setup(t);
  const sent: number[] = [];
  const sender: SyslogPort = {
    description: 'test://picky',
    close: () => undefined,
    send: async (m) => {
      const [id] = sequenceIds([m.toString('utf8')]);
      if (id === 2) throw new GatewayError('AUDIT_MESSAGE_TOO_LARGE', 'too large');
      sent.push(id ?? 0);
    },
  };
  const { logger, lines } = memoryLogger();
  const fwd = forwarder(forwarding, sender, logger);
  await fwd.start();
  t.teardown(() => fwd.stop(Date.now()));
  for (let n = 1; n <= 3; n += 1) trail.record(studyReceived(n), Date.now());
  await waitUntil(() => sent.length === 2, 'rows 1 and 3 sent');
  t.deepEqual(sent, [1, 3]);
  t.like(fwd.status().figures, { skipped: 1, waiting: 0 });
  t.like(lines.find((l) => l.level === 'error')?.fields, { event: 'GATEWAY-7504', auditId: 2 });
});

test('stop at the deadline cuts a hanging send; its row stays unsent for the next start', async (t) => {
  const { trail, forwarding } = setup(t);
  const sender = new GatedSender();
  const fwd = forwarder(forwarding, sender, memoryLogger().logger);
  await fwd.start();
  trail.record(studyReceived(1), Date.now());
  await waitUntil(() => sender.waiting === 1, 'the send to hang');
  await fwd.stop(Date.now() + 50);
  t.is(fwd.status().state, 'stopped');
  t.true(sender.closed >= 1);
  t.is(forwarding.backlog().waiting, 1);
});

test('outage with a real rsyslogd (TCP): rows wait while it is down (/healthz degraded, how many and since when), then all arrive once, in order', async (t) => {
  const { dir, trail, forwarding } = setup(t);
  const ports = { udpPort: await freePort(), tcpPort: await freePort() };
  const sender = new SyslogSender({ transport: 'tcp', host: '127.0.0.1', port: ports.tcpPort, timeoutMs: 2_000 });
  const { logger, lines } = memoryLogger();
  const fwd = forwarder(forwarding, sender, logger);
  await fwd.start();
  t.teardown(() => fwd.stop(Date.now() + 1_000));

  // Down from the start: every record() still returns at once; the rows wait.
  const ids: number[] = [];
  for (let n = 1; n <= 5; n += 1) ids.push(trail.record(studyReceived(n), Date.now()));
  await waitUntil(() => fwd.status().state === 'degraded', 'the forwarder to report the outage', 15_000);
  const down = fwd.status();
  t.like(down.figures, { waiting: 5 });
  t.regex(down.problems[0] ?? '', /unreachable since .*: 5 audit messages wait in the job store \(the oldest from /);
  t.true(lines.some((l) => l.fields.event === 'GATEWAY-7502'));

  const rsyslog = await startRsyslog(dir, ports);
  t.teardown(() => rsyslog.stop());
  await waitUntil(() => rsyslog.messages().length >= 5, 'the waiting rows to arrive', 15_000);
  await waitUntil(() => fwd.status().state === 'running', 'the forwarder to recover', 15_000);
  t.true(lines.some((l) => l.fields.event === 'GATEWAY-7503'));

  // A second outage under an open connection, with rows recorded meanwhile.
  await rsyslog.stop();
  await waitUntil(() => sender['stream'] === undefined, 'the sender to see the connection closed', 15_000);
  for (let n = 6; n <= 8; n += 1) ids.push(trail.record(studyReceived(n), Date.now()));
  await waitUntil(() => fwd.status().state === 'degraded', 'the second outage to show', 15_000);
  const back = await startRsyslog(dir, ports);
  t.teardown(() => back.stop());
  await waitUntil(() => back.messages().length >= 8, 'all rows to arrive', 15_000);
  await waitUntil(() => fwd.status().figures?.waiting === 0, 'the backlog to empty', 15_000);

  const got = back.messages();
  t.deepEqual(
    got.map((m) => Number(m.sd.match(/sequenceId="(\d+)"/)?.[1])),
    ids,
    'every row once, in recording order',
  );
  for (const c of checkAtna(got.map((m) => m.msg.replace(/^\uFEFF/, '')))) t.deepEqual(c.errors, []);
});
