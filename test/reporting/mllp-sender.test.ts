import test from 'ava';
import { GatewayError } from '../../src/errors.js';
import { resultControlId } from '../../src/reporting/hl7-control-id.js';
import { buildOruR01, type OruInput } from '../../src/reporting/hl7-oru.js';
import { MllpSender, type MllpSenderOptions } from '../../src/reporting/mllp-sender.js';
import { startHl7Listener, type ReceivedMessage } from '../helpers/hl7-listener.js';
import { freePort } from '../helpers/ports.js';

// A response timeout that a loaded 2-core machine never hits by accident, and a short one for the test
// that waits for it.
const RESPONSE_TIMEOUT_MS = 5_000;
const SHORT_RESPONSE_TIMEOUT_MS = 600;

let studyCounter = 0;
function oru(overrides: Partial<OruInput> = {}): { message: string; controlId: string; input: OruInput } {
  const studyInstanceUid = `1.2.826.0.1.3680043.8.498.${++studyCounter}`;
  const controlId = resultControlId(studyInstanceUid, 0, 'RIS');
  const input: OruInput = {
    sendingApp: 'CXR_GATEWAY',
    sendingFacility: 'HOSP',
    receivingApp: 'RIS',
    receivingFacility: 'HOSP',
    timestamp: new Date('2024-03-01T10:00:00Z'),
    controlId,
    patient: { id: 'P123', issuer: 'HOSP_MRN', name: 'Doe^John', birthDate: '19700102', sex: 'M' },
    order: {
      placer: 'PL-1',
      filler: 'FI-1',
      accession: 'ACC0001',
      procedureCode: { code: 'CXR2V', text: 'Chest X-ray' },
      department: 'RAD',
    },
    observationTime: '20240301093015',
    resultTime: new Date('2024-03-01T10:00:05Z'),
    studyInstanceUid,
    classification: {
      predicted: 'pneumonia',
      classes: ['COVID-19', 'pneumonia', 'normal'],
      probabilities: [0.05, 0.9, 0.05],
    },
    scSeriesInstanceUid: '2.25.42',
    modelName: 'DenseNet-201',
    modelVersion: '1.2.0',
    intendedUse: 'Not for diagnostic use.',
    resultStatus: 'P',
    ...overrides,
  };
  return { message: buildOruR01(input), controlId, input };
}

async function sender(port: number, options: Partial<MllpSenderOptions> = {}): Promise<MllpSender> {
  const s = new MllpSender({
    host: '127.0.0.1',
    port,
    connectTimeoutMs: 1_000,
    responseTimeoutMs: RESPONSE_TIMEOUT_MS,
    ackMode: 'original',
    ...options,
  });
  await s.start();
  return s;
}

/** Field n (1-based, HL7 numbering) of the first segment `name`, as python-hl7 parsed and unescaped it. */
function field(received: ReceivedMessage, name: string, n: number, occurrence = 0): string[] {
  const segment = (received.segments ?? []).filter((s) => s[0] === name)[occurrence];
  return (segment?.[n] as string[] | undefined) ?? [];
}

test('the RIS answers AA: accepted, and python-hl7 reads the ORU as we meant it', async (t) => {
  const listener = await startHl7Listener({ responses: ['aa'] });
  t.teardown(() => listener.stop());
  const s = await sender(listener.port);
  t.teardown(() => s.stop());
  const { message, controlId } = oru();

  t.deepEqual(await s.send(message, controlId), { kind: 'accepted', ackCode: 'AA' });

  const [received] = await listener.waitForMessages(1);
  if (received === undefined) return t.fail();
  t.is(received.parseError, undefined);
  t.is(received.raw, message.replace(/\r$/, '') + '\r', 'the bytes arrive unchanged');
  t.false(received.raw.includes('\n'), 'segments are separated by \\r only');
  t.deepEqual(
    (received.segments ?? []).map((s) => s[0]),
    ['MSH', 'PID', 'ORC', 'OBR', 'NTE', 'TQ1', 'OBX', 'OBX', 'OBX', 'OBX', 'OBX', 'OBX', 'OBX'],
  );
  t.is(received.controlId, controlId);
  t.deepEqual(field(received, 'MSH', 9), ['ORU', 'R01', 'ORU_R01']);
  t.deepEqual(field(received, 'MSH', 12), ['2.5.1']);
  t.deepEqual(field(received, 'MSH', 15), ['AL']);
  t.deepEqual(field(received, 'MSH', 16), ['NE']);
  t.deepEqual(field(received, 'OBR', 18), ['ACC0001']);
  t.deepEqual(field(received, 'OBR', 25), ['P']);
  t.deepEqual(field(received, 'OBX', 3, 1), ['CXR-CLASS', 'AI classification', '99CXR']);
  t.deepEqual(field(received, 'OBX', 5, 1).slice(0, 3), ['233604007', 'Pneumonia', 'SCT']);
  t.is(field(received, 'OBX', 5, 1)[8], 'pneumonia');
  t.deepEqual(
    [2, 3, 4].map((k) => [
      field(received, 'OBX', 3, k)[1],
      field(received, 'OBX', 5, k)[0],
      field(received, 'OBX', 6, k)[0],
    ]),
    [
      ['Probability COVID-19', '0.05', '1'],
      ['Probability pneumonia', '0.9', '1'],
      ['Probability normal', '0.05', '1'],
    ],
  );
  for (let k = 0; k < 7; k++) t.deepEqual(field(received, 'OBX', 11, k), ['P']);
  t.deepEqual(field(received, 'NTE', 3), ['Not for diagnostic use.']);
});

test('values with | ^ ~ \\ & in the patient name and accession come out of python-hl7 unchanged', async (t) => {
  const listener = await startHl7Listener({ responses: ['aa'] });
  t.teardown(() => listener.stop());
  const s = await sender(listener.port);
  t.teardown(() => s.stop());
  const family = "O'Brien|Smith&Co";
  const given = 'Mary~Ann\\Jo';
  const accession = 'A|1^2~3\\4&5';
  const { message, controlId } = oru({
    patient: { id: 'ID|^~\\&', issuer: 'ISS&1', name: `${family}^${given}^^Dr^III`, sex: 'F' },
    order: { placer: 'PL^1', filler: 'FI~1', accession, procedureCode: { code: 'CXR' }, department: 'RAD' },
  });

  t.like(await s.send(message, controlId), { kind: 'accepted' });

  const [received] = await listener.waitForMessages(1);
  if (received === undefined) return t.fail();
  t.deepEqual(field(received, 'PID', 5), [family, given, '', 'III', 'Dr']);
  t.deepEqual(field(received, 'PID', 3), ['ID|^~\\&', '', '', 'ISS&1']);
  t.deepEqual(field(received, 'OBR', 18), [accession]);
  t.deepEqual(field(received, 'OBR', 2), ['PL^1']);
  t.deepEqual(field(received, 'ORC', 3), ['FI~1']);
});

test('one connection carries several messages', async (t) => {
  const listener = await startHl7Listener({ responses: ['aa'] });
  t.teardown(() => listener.stop());
  const s = await sender(listener.port);
  t.teardown(() => s.stop());
  const messages = [oru(), oru(), oru()];
  const outcomes = await Promise.all(messages.map(({ message, controlId }) => s.send(message, controlId)));
  t.deepEqual(
    outcomes.map((o) => o.kind),
    ['accepted', 'accepted', 'accepted'],
  );
  const received = await listener.waitForMessages(3);
  t.deepEqual(
    received.map((m) => m.connection),
    [1, 1, 1],
  );
  t.deepEqual(
    received.map((m) => m.controlId),
    messages.map((m) => m.controlId),
  );
});

test('AE: retry, with a reason naming AE and its error code (the RIS text apart, as peerText); the same control ID resent is then accepted', async (t) => {
  const listener = await startHl7Listener({ responses: ['ae', 'aa'] });
  t.teardown(() => listener.stop());
  const s = await sender(listener.port);
  t.teardown(() => s.stop());
  const { message, controlId } = oru();

  const first = await s.send(message, controlId);
  t.like(first, { kind: 'retry', cause: 'application-error' });
  t.is(
    (first as { reason: string }).reason,
    'the RIS answered AE (application error) (error code 207; 52 characters of text, logged at debug level only)',
  );
  t.like(first, { peerText: 'test listener answers AE; patient unknown to the RIS' });

  t.deepEqual(await s.send(message, controlId), { kind: 'accepted', ackCode: 'AA' });
  await listener.waitForMessages(2);
  t.is(listener.countByControlId(controlId), 2);
});

test('AR: parked, not retried', async (t) => {
  const listener = await startHl7Listener({ responses: ['ar'] });
  t.teardown(() => listener.stop());
  const s = await sender(listener.port);
  t.teardown(() => s.stop());
  const { message, controlId } = oru();
  const outcome = await s.send(message, controlId);
  t.like(outcome, { kind: 'parked', cause: 'application-reject' });
  t.regex((outcome as { reason: string }).reason, /AR \(application reject\)/);
});

test('CA is success in enhanced mode only; CR is parked', async (t) => {
  const listener = await startHl7Listener({ responses: ['ca', 'ca', 'cr'] });
  t.teardown(() => listener.stop());
  const enhanced = await sender(listener.port, { ackMode: 'enhanced' });
  t.teardown(() => enhanced.stop());
  const original = await sender(listener.port, { ackMode: 'original' });
  t.teardown(() => original.stop());
  const a = oru();
  t.deepEqual(await enhanced.send(a.message, a.controlId), { kind: 'accepted', ackCode: 'CA' });
  const b = oru();
  t.like(await original.send(b.message, b.controlId), { kind: 'retry', cause: 'unexpected-ack-code' });
  const c = oru();
  t.like(await enhanced.send(c.message, c.controlId), { kind: 'parked', cause: 'commit-reject' });
});

test('an ACK whose segments are separated by \\n is read', async (t) => {
  const listener = await startHl7Listener({ responses: ['aa-lf'] });
  t.teardown(() => listener.stop());
  const s = await sender(listener.port);
  t.teardown(() => s.stop());
  const { message, controlId } = oru();
  t.deepEqual(await s.send(message, controlId), { kind: 'accepted', ackCode: 'AA' });
});

test('no answer: retry after the response timeout; the resend goes over a new connection and is accepted', async (t) => {
  const listener = await startHl7Listener({ responses: ['silent', 'aa'] });
  t.teardown(() => listener.stop());
  const s = await sender(listener.port, { responseTimeoutMs: SHORT_RESPONSE_TIMEOUT_MS });
  t.teardown(() => s.stop());
  const { message, controlId } = oru();

  const started = Date.now();
  const first = await s.send(message, controlId);
  const waited = Date.now() - started;
  t.like(first, { kind: 'retry', cause: 'no-ack' });
  t.regex((first as { reason: string }).reason, new RegExp(`no ACK .* within ${SHORT_RESPONSE_TIMEOUT_MS} ms`));
  t.true(waited >= SHORT_RESPONSE_TIMEOUT_MS - 20 && waited < SHORT_RESPONSE_TIMEOUT_MS + 2_000, `waited ${waited} ms`);

  t.like(await s.send(message, controlId), { kind: 'accepted' });
  const received = await listener.waitForMessages(2);
  t.is(listener.countByControlId(controlId), 2);
  t.deepEqual(
    received.map((m) => m.connection),
    [1, 2],
    'a connection that timed out is not reused: a late ACK could be taken for the next message',
  );
});

test('an ACK with a wrong MSA-2 is not success: retry', async (t) => {
  const listener = await startHl7Listener({ responses: ['wrong-id', 'aa'] });
  t.teardown(() => listener.stop());
  const s = await sender(listener.port);
  t.teardown(() => s.stop());
  const { message, controlId } = oru();
  const outcome = await s.send(message, controlId);
  t.like(outcome, { kind: 'retry', cause: 'control-id-mismatch' });
  t.regex(
    (outcome as { reason: string }).reason,
    new RegExp(`MSA-2 'WRONG-${controlId}', which is not our control ID '${controlId}'`),
  );
  t.like(await s.send(message, controlId), { kind: 'accepted' });
});

test('the RIS closes the connection without answering: retry', async (t) => {
  const listener = await startHl7Listener({ responses: ['close', 'aa'] });
  t.teardown(() => listener.stop());
  const s = await sender(listener.port);
  t.teardown(() => s.stop());
  const { message, controlId } = oru();
  const outcome = await s.send(message, controlId);
  t.like(outcome, { kind: 'retry' });
  t.true(['connection-closed', 'connection-reset'].includes((outcome as { cause: string }).cause));
  t.regex((outcome as { reason: string }).reason, /before it answered/);
  t.like(await s.send(message, controlId), { kind: 'accepted' });
});

test('listener down: retry (connection refused); listener up: the same control ID is accepted, received once', async (t) => {
  const port = await freePort();
  const s = await sender(port);
  t.teardown(() => s.stop());
  const { message, controlId } = oru();

  const down = await s.send(message, controlId);
  t.like(down, { kind: 'retry', cause: 'connection-refused' });
  t.regex((down as { reason: string }).reason, new RegExp(`127\\.0\\.0\\.1:${port} refused the connection`));

  const listener = await startHl7Listener({ port, responses: ['aa'] });
  t.teardown(() => listener.stop());
  t.deepEqual(await s.send(message, controlId), { kind: 'accepted', ackCode: 'AA' });
  await listener.waitForMessages(1);
  t.is(listener.countByControlId(controlId), 1);
});

test('the listener goes away between messages: the next send reconnects', async (t) => {
  const first = await startHl7Listener({ responses: ['aa'] });
  const port = first.port;
  const s = await sender(port);
  t.teardown(() => s.stop());
  const a = oru();
  t.like(await s.send(a.message, a.controlId), { kind: 'accepted' });
  await first.stop();

  const b = oru();
  t.like(await s.send(b.message, b.controlId), { kind: 'retry', cause: 'connection-refused' });
  const second = await startHl7Listener({ port, responses: ['aa'] });
  t.teardown(() => second.stop());
  t.like(await s.send(b.message, b.controlId), { kind: 'accepted' });
  await second.waitForMessages(1);
  t.is(second.countByControlId(b.controlId), 1);
});

test('a RIS that closes the connection after each ACK costs no retry: the next message goes over a fresh connection', async (t) => {
  const listener = await startHl7Listener({ responses: ['aa-close'] });
  t.teardown(() => listener.stop());
  const s = await sender(listener.port);
  t.teardown(() => s.stop());
  const messages = [oru(), oru(), oru()];
  for (const { message, controlId } of messages) t.like(await s.send(message, controlId), { kind: 'accepted' });
  const received = await listener.waitForMessages(3);
  t.deepEqual(
    received.map((m) => m.connection),
    [1, 2, 3],
  );
  for (const { controlId } of messages) t.is(listener.countByControlId(controlId), 1);
});

test('stop() ends a send in flight with a retry and closes the connection', async (t) => {
  const listener = await startHl7Listener({ responses: ['silent'] });
  t.teardown(() => listener.stop());
  const s = new MllpSender({
    host: '127.0.0.1',
    port: listener.port,
    connectTimeoutMs: 1_000,
    responseTimeoutMs: 10_000,
    ackMode: 'original',
  });
  await s.start();
  const { message, controlId } = oru();
  const pending = s.send(message, controlId);
  await listener.waitForMessages(1);
  const started = Date.now();
  await s.stop();
  t.like(await pending, { kind: 'retry', cause: 'stopped' });
  t.true(Date.now() - started < 2_000);
  await t.throwsAsync(s.send(message, controlId), { instanceOf: GatewayError, code: 'MLLP_NOT_STARTED' });
});

test("refuses a control ID that is not the message's MSH-10", async (t) => {
  const s = await sender(await freePort());
  t.teardown(() => s.stop());
  const { message } = oru();
  await t.throwsAsync(s.send(message, 'OTHER'), { instanceOf: GatewayError, code: 'MLLP_CONTROL_ID_MISMATCH' });
});

test('the abort signal (the shutdown deadline) ends a send waiting for its ACK at once, and a send queued behind it, as stopped retries', async (t) => {
  const listener = await startHl7Listener({ responses: ['silent'] });
  t.teardown(() => listener.stop());
  const s = await sender(listener.port, { responseTimeoutMs: 60_000 });
  t.teardown(() => s.stop());
  const controller = new AbortController();
  const first = oru();
  const second = oru();
  const sending = s.send(first.message, first.controlId, controller.signal);
  const queued = s.send(second.message, second.controlId, controller.signal);
  await listener.waitForMessages(1);
  const aborted = Date.now();
  controller.abort();
  const outcomes = await Promise.all([sending, queued]);
  t.deepEqual(
    outcomes.map((o) => (o.kind === 'retry' ? o.cause : o.kind)),
    ['stopped', 'stopped'],
  );
  t.true(Date.now() - aborted < 2000, `ended ${Date.now() - aborted} ms after the signal`);
  // The queued message never went out.
  t.is(listener.received.length, 1);
});
