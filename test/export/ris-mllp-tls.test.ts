import test from 'ava';
import { copyFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import net from 'node:net';
import path from 'node:path';
import { Writable } from 'node:stream';
import { risDestinationSchema } from '../../src/config/schema.js';
import { GatewayError } from '../../src/errors.js';
import { createDestinations } from '../../src/export/create-destinations.js';
import type { MllpTlsSettings } from '../../src/export/mllp-tls.js';
import { failureClassOf } from '../../src/export/retry-policy.js';
import { RisMllpDestination, studyUidOf } from '../../src/export/ris-mllp-destination.js';
import { createLogger } from '../../src/logging/logger.js';
import { AuditTrail, type AuditRecord } from '../../src/store/audit-trail.js';
import { JobStore } from '../../src/store/job-store.js';
import { startHl7Listener, type Hl7ListenerTls } from '../helpers/hl7-listener.js';
import { makeTestPki, type TestPki } from '../helpers/test-pki.js';

// MLLP over TLS against a real peer: Debian's python3-hl7 listener wrapped in Python's ssl (hl7_listener.py
// --tls-cert ...), with certificates made by openssl for this run.

const STUDY = '1.2.826.0.1.3680043.8.498.17';
const MESSAGE = (id: string) =>
  `MSH|^~\\&|CXR_GATEWAY|RAD|RIS|HOSP|20260101120000||ORU^R01^ORU_R01|${id}|P|2.5.1\rPID|1||X1\r` +
  `OBR|1|P1|F1\rOBX|1|ST|113014^DICOM Study^DCM||${STUDY}||||||F\r`;

let dir: string;
let pki: TestPki;

test.before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'ris-mllp-tls-'));
  pki = await makeTestPki(dir);
});
test.after.always(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

function capture() {
  const lines: Array<Record<string, unknown>> = [];
  const logger = createLogger({
    level: 'info',
    format: 'json',
    stream: new Writable({
      write(chunk: Buffer, _e, cb) {
        for (const l of chunk.toString().split('\n'))
          if (l.trim() !== '') lines.push(JSON.parse(l) as Record<string, unknown>);
        cb();
      },
    }),
  });
  return { logger, lines };
}

async function setUp(
  t: import('ava').ExecutionContext,
  listenerTls: (p: TestPki) => Hl7ListenerTls,
  clientTls: (p: TestPki) => MllpTlsSettings,
) {
  const listener = await startHl7Listener({ tls: listenerTls(pki) });
  t.teardown(() => listener.stop());
  const { logger, lines } = capture();
  const audit: AuditRecord[] = [];
  const destination = new RisMllpDestination({
    name: 'ris-tls',
    sender: {
      host: '127.0.0.1',
      port: listener.port,
      connectTimeoutMs: 5000,
      responseTimeoutMs: 5000,
      ackMode: 'original',
    },
    tls: clientTls(pki),
    logger,
    audit: { record: (entry: AuditRecord) => audit.push(entry) },
    now: () => 1_700_000_000_000,
  });
  await destination.start();
  t.teardown(() => destination.stop());
  return { listener, destination, lines, audit };
}

const serverOnly = (p: TestPki): Hl7ListenerTls => ({ certFile: p.serverCert, keyFile: p.serverKey });
const mutual = (p: TestPki): Hl7ListenerTls => ({ ...serverOnly(p), clientCaFile: p.caCert });

test('delivered over TLS: the RIS certificate verified against caFile, the ACK read, ris.sent audited', async (t) => {
  const { listener, destination, audit, lines } = await setUp(t, serverOnly, (p) => ({
    caFile: p.caCert,
    verifyServer: true,
  }));
  const outcome = await destination.deliver([{ controlId: 'TLS1', message: MESSAGE('TLS1') }]);
  t.deepEqual(outcome, { kind: 'delivered' });
  const [received] = await listener.waitForMessages(1);
  t.is(received?.controlId, 'TLS1');
  // The listener ran over TLS and no client certificate was asked for.
  t.is(received?.peerSubject, null);
  t.is(audit.length, 1);
  t.like(audit[0], {
    category: 'hl7',
    action: 'ris.sent',
    outcome: 'success',
    address: `127.0.0.1:${listener.port}`,
    target: `study ${STUDY}`,
    detail: null,
  });
  t.deepEqual(audit[0]?.after, {
    studyInstanceUid: STUDY,
    destination: 'ris-tls',
    controlId: 'TLS1',
    host: '127.0.0.1',
    port: listener.port,
    tls: true,
  });
  // No patient data in an audit row: the PID's X1 is nowhere.
  t.notRegex(JSON.stringify(audit), /X1/);
  t.false(lines.some((l) => l.event === 'EXPORT-6401'));
});

for (const [title, settings] of [
  ['caFile of another CA', (p: TestPki): MllpTlsSettings => ({ caFile: p.otherCaCert, verifyServer: true })],
  [
    'no caFile: the system trust store, which does not know the test CA',
    (): MllpTlsSettings => ({ verifyServer: true }),
  ],
  [
    'a servername the certificate does not carry',
    (p: TestPki): MllpTlsSettings => ({ caFile: p.caCert, verifyServer: true, servername: 'ris.example.org' }),
  ],
] as const) {
  test(`refused when the RIS certificate is not trusted (${title}): transient cause, tls.failed audited, nothing sent`, async (t) => {
    const { listener, destination, audit, lines } = await setUp(t, serverOnly, settings);
    const outcome = await destination.deliver([{ controlId: 'UNTR1', message: MESSAGE('UNTR1') }]);
    t.like(outcome, { kind: 'retry', cause: 'tls-untrusted-certificate' });
    t.is(failureClassOf('tls-untrusted-certificate', 'retry'), 'transient');
    // The handshake failed before any byte of the message was written: the outcome came after that.
    t.is(listener.received.length, 0);
    t.deepEqual(
      audit.map((a) => [a.category, a.action, a.outcome]),
      [
        ['hl7', 'ris.sent', 'failure'],
        ['security', 'tls.failed', 'failure'],
      ],
    );
    t.regex(String(audit[0]?.detail), /^tls-untrusted-certificate: /);
    t.deepEqual(audit[1]?.after, { destination: 'ris-tls', address: `127.0.0.1:${listener.port}` });
    t.true(lines.some((l) => l.event === 'EXPORT-6401' && l.cause === 'tls-untrusted-certificate'));
  });
}

test('verifyServer: false accepts a certificate of an unknown CA (the switch really turns verification off)', async (t) => {
  const { destination } = await setUp(t, serverOnly, (p) => ({ caFile: p.otherCaCert, verifyServer: false }));
  t.deepEqual(await destination.deliver([{ controlId: 'NOVER1', message: MESSAGE('NOVER1') }]), { kind: 'delivered' });
});

test('mutual TLS: the client certificate is presented when configured and the listener requires it', async (t) => {
  const { listener, destination, audit } = await setUp(t, mutual, (p) => ({
    caFile: p.caCert,
    certFile: p.clientCert,
    keyFile: p.clientKey,
    verifyServer: true,
  }));
  t.deepEqual(await destination.deliver([{ controlId: 'MTLS1', message: MESSAGE('MTLS1') }]), { kind: 'delivered' });
  const [received] = await listener.waitForMessages(1);
  t.is(received?.peerSubject, 'MODALITY1');
  t.like(audit[0], { action: 'ris.sent', outcome: 'success' });
});

for (const [title, client] of [
  ['without a client certificate', (p: TestPki): MllpTlsSettings => ({ caFile: p.caCert, verifyServer: true })],
  [
    'with a client certificate of another CA',
    (p: TestPki): MllpTlsSettings => ({
      caFile: p.caCert,
      certFile: p.untrustedClientCert,
      keyFile: p.untrustedClientKey,
      verifyServer: true,
    }),
  ],
] as const) {
  test(`mutual TLS ${title}: refused by the RIS, cause tls-certificate-refused, tls.failed audited`, async (t) => {
    const { listener, destination, audit } = await setUp(t, mutual, client);
    const outcome = await destination.deliver([{ controlId: 'MTLS2', message: MESSAGE('MTLS2') }]);
    t.like(outcome, { kind: 'retry', cause: 'tls-certificate-refused' });
    t.is(failureClassOf('tls-certificate-refused', 'retry'), 'transient');
    t.is(listener.received.length, 0);
    t.deepEqual(
      audit.map((a) => a.action),
      ['ris.sent', 'tls.failed'],
    );
  });
}

test('a TLS file that cannot be read stops the destination being built (MLLP_TLS_FILE_UNREADABLE)', (t) => {
  const { logger } = capture();
  const error = t.throws(
    () =>
      new RisMllpDestination({
        name: 'ris-tls',
        sender: { host: '127.0.0.1', port: 1, connectTimeoutMs: 100, responseTimeoutMs: 100, ackMode: 'original' },
        tls: { caFile: path.join(dir, 'missing.pem'), verifyServer: true },
        logger,
      }),
  );
  t.true(error instanceof GatewayError && error.code === 'MLLP_TLS_FILE_UNREADABLE');
});

test('an audit trail that throws does not decide the delivery: delivered, and EXPORT-6403 says the row is missing', async (t) => {
  const listener = await startHl7Listener({ tls: serverOnly(pki) });
  t.teardown(() => listener.stop());
  const { logger, lines } = capture();
  const destination = new RisMllpDestination({
    name: 'ris-tls',
    sender: {
      host: '127.0.0.1',
      port: listener.port,
      connectTimeoutMs: 5000,
      responseTimeoutMs: 5000,
      ackMode: 'original',
    },
    tls: { caFile: pki.caCert, verifyServer: true },
    logger,
    audit: {
      record: () => {
        throw new Error('database is locked');
      },
    },
  });
  await destination.start();
  t.teardown(() => destination.stop());
  t.deepEqual(await destination.deliver([{ controlId: 'AUD1', message: MESSAGE('AUD1') }]), { kind: 'delivered' });
  t.true(lines.some((l) => l.event === 'EXPORT-6403' && l.action === 'ris.sent'));
});

test('studyUidOf reads the DICOM Study OBX of our ORU, and nothing else', (t) => {
  t.is(studyUidOf(MESSAGE('X')), STUDY);
  t.is(studyUidOf('MSH|^~\\&|A|B|C|D|20260101||ORU^R01|X|P|2.5.1\rPID|1||X1\r'), null);
  // A value that is not a UID (free text) never reaches an audit row.
  t.is(studyUidOf('MSH|^~\\&|A|B|C|D|20260101||ORU^R01|X|P|2.5.1\rOBX|1|ST|113014^DICOM Study^DCM||DOE JANE\r'), null);
});

test('the rows land in the real audit trail (job store): ris.sent and tls.failed, with their JSON facts', async (t) => {
  const store = JobStore.open(path.join(dir, `audit-${Date.now()}.sqlite`));
  t.teardown(() => store.close());
  const trail = new AuditTrail(store.connection);
  const listener = await startHl7Listener({ tls: serverOnly(pki) });
  t.teardown(() => listener.stop());
  const { logger } = capture();
  const make = (caFile: string) =>
    new RisMllpDestination({
      name: 'ris-tls',
      sender: {
        host: '127.0.0.1',
        port: listener.port,
        connectTimeoutMs: 5000,
        responseTimeoutMs: 5000,
        ackMode: 'original',
      },
      tls: { caFile, verifyServer: true },
      logger,
      audit: trail,
      now: () => 1_700_000_000_000,
    });
  const good = make(pki.caCert);
  const bad = make(pki.otherCaCert);
  await good.start();
  await bad.start();
  t.teardown(() => Promise.all([good.stop(), bad.stop()]).then(() => undefined));
  t.deepEqual(await good.deliver([{ controlId: 'ROW1', message: MESSAGE('ROW1') }]), { kind: 'delivered' });
  t.like(await bad.deliver([{ controlId: 'ROW2', message: MESSAGE('ROW2') }]), { cause: 'tls-untrusted-certificate' });
  const rows = trail.list({ offset: 0, limit: 10 }).items;
  const summary = rows.map((r) => `${r.category} ${r.action} ${r.outcome} ${r.target}`).sort();
  t.deepEqual(summary, [
    `hl7 ris.sent failure study ${STUDY}`,
    `hl7 ris.sent success study ${STUDY}`,
    'security tls.failed failure destination ris-tls',
  ]);
  const sent = rows.find((r) => r.action === 'ris.sent' && r.outcome === 'success');
  t.like(JSON.parse(sent?.after ?? '{}'), { studyInstanceUid: STUDY, controlId: 'ROW1', tls: true });
  t.is(sent?.at, 1_700_000_000_000);
});

test('a RIS that closes the kept TLS connection: the next message goes out on a fresh one, no failure', async (t) => {
  const listener = await startHl7Listener({ tls: serverOnly(pki), responses: ['aa-close', 'aa'] });
  t.teardown(() => listener.stop());
  const { logger } = capture();
  const destination = new RisMllpDestination({
    name: 'ris-tls',
    sender: {
      host: '127.0.0.1',
      port: listener.port,
      connectTimeoutMs: 5000,
      responseTimeoutMs: 5000,
      ackMode: 'original',
    },
    tls: { caFile: pki.caCert, verifyServer: true },
    logger,
  });
  await destination.start();
  t.teardown(() => destination.stop());
  t.deepEqual(await destination.deliver([{ controlId: 'K1', message: MESSAGE('K1') }]), { kind: 'delivered' });
  t.deepEqual(await destination.deliver([{ controlId: 'K2', message: MESSAGE('K2') }]), { kind: 'delivered' });
  const received = await listener.waitForMessages(2);
  t.deepEqual(
    received.map((m) => [m.controlId, m.connection]),
    [
      ['K1', 1],
      ['K2', 2],
    ],
  );
});

for (const [title, onConnection] of [
  ['drops the connection at once', (socket: net.Socket) => socket.destroy()],
  ['answers in plain text', (socket: net.Socket) => socket.end('MSH|^~\\&|not TLS\r\n')],
] as const) {
  test(`a peer that ${title} instead of a TLS handshake: tls-handshake-failed, tls.failed audited`, async (t) => {
    const server = net.createServer(onConnection);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    // Not waiting for close: its callback waits on connections the client side has already destroyed.
    t.teardown(() => void server.close());
    const { port } = server.address() as net.AddressInfo;
    const { logger } = capture();
    const audit: AuditRecord[] = [];
    const destination = new RisMllpDestination({
      name: 'ris-tls',
      sender: { host: '127.0.0.1', port, connectTimeoutMs: 5000, responseTimeoutMs: 5000, ackMode: 'original' },
      tls: { caFile: pki.caCert, verifyServer: true },
      logger,
      audit: { record: (entry: AuditRecord) => audit.push(entry) },
    });
    await destination.start();
    t.teardown(() => destination.stop());
    const outcome = await destination.deliver([{ controlId: 'HS1', message: MESSAGE('HS1') }]);
    t.like(outcome, { kind: 'retry', cause: 'tls-handshake-failed' });
    t.is(failureClassOf('tls-handshake-failed', 'retry'), 'transient');
    t.deepEqual(
      audit.map((a) => a.action),
      ['ris.sent', 'tls.failed'],
    );
  });
}

test('a renewed client certificate is used from the next connection on, without rebuilding the destination', async (t) => {
  const certFile = path.join(dir, 'rotating-client.pem');
  const keyFile = path.join(dir, 'rotating-client.key');
  copyFileSync(pki.untrustedClientCert, certFile);
  copyFileSync(pki.untrustedClientKey, keyFile);
  const { listener, destination } = await setUp(t, mutual, (p) => ({
    caFile: p.caCert,
    certFile,
    keyFile,
    verifyServer: true,
  }));
  t.like(await destination.deliver([{ controlId: 'ROT1', message: MESSAGE('ROT1') }]), {
    cause: 'tls-certificate-refused',
  });
  copyFileSync(pki.clientCert, certFile);
  copyFileSync(pki.clientKey, keyFile);
  t.deepEqual(await destination.deliver([{ controlId: 'ROT1', message: MESSAGE('ROT1') }]), { kind: 'delivered' });
  const [received] = await listener.waitForMessages(1);
  t.is(received?.peerSubject, 'MODALITY1');
});

test('from the config: destinations.ris[].tls (as the schema parses it) reaches the destination createDestinations builds', async (t) => {
  const listener = await startHl7Listener({ tls: mutual(pki) });
  t.teardown(() => listener.stop());
  const audit: AuditRecord[] = [];
  const ris = risDestinationSchema.parse({
    type: 'mllp',
    name: 'ris-from-config',
    host: '127.0.0.1',
    port: listener.port,
    tls: { caFile: pki.caCert, certFile: pki.clientCert, keyFile: pki.clientKey },
  });
  t.is(ris.type === 'mllp' ? ris.tls?.verifyServer : undefined, true, 'verification is on by default');
  const { ris: built } = createDestinations({ pacs: [], ris: [ris] }, 'CXR_GATEWAY', capture().logger, {
    record: (entry: AuditRecord) => audit.push(entry),
  });
  const destination = built.get('ris-from-config');
  if (destination === undefined) return t.fail('no destination built');
  await destination.start();
  t.teardown(() => destination.stop());
  t.deepEqual(await destination.deliver([{ controlId: 'CFG1', message: MESSAGE('CFG1') }]), { kind: 'delivered' });
  t.is((await listener.waitForMessages(1))[0]?.peerSubject, 'MODALITY1');
  t.like(audit[0], { action: 'ris.sent', outcome: 'success' });
  // certFile without keyFile is refused by the schema.
  t.throws(() =>
    risDestinationSchema.parse({ type: 'mllp', name: 'x', host: 'h', port: 1, tls: { certFile: pki.clientCert } }),
  );
});
