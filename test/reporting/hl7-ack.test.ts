import test from 'ava';
import { interpretAck, parseAck, type Hl7Ack } from '../../src/reporting/hl7-ack.js';

const ID = 'CXR0123456789ABCDEFG';

test('reads MSA-1 and MSA-2 whatever separates the segments (\\r, \\n, \\r\\n)', (t) => {
  for (const eol of ['\r', '\n', '\r\n']) {
    const parsed = parseAck(`MSH|^~\\&|RIS|HOSP|CXR|HOSP|20240301||ACK^R01^ACK|A1|P|2.5.1${eol}MSA|AA|${ID}${eol}`);
    t.deepEqual(parsed, { ok: true, ack: { code: 'AA', controlId: ID, text: '' } }, JSON.stringify(eol));
  }
});

test("takes the delimiters from the ACK's own MSH", (t) => {
  const parsed = parseAck(`MSH#$*!%#RIS#HOSP\rMSA#ae#${ID}#bad!F!value$ignored\r`);
  t.deepEqual(parsed, { ok: true, ack: { code: 'AE', controlId: ID, text: 'bad#value$ignored' } });
});

test('collects MSA-3 and the ERR texts (v2.5 ERR-8, ERR-3 text, v2.4 ERR-1) for the admin', (t) => {
  const parsed = parseAck(
    [
      'MSH|^~\\&|RIS|HOSP',
      `MSA|AE|${ID}|cannot file`,
      'ERR|||207^Application internal error^HL70357|E||||patient unknown',
      'ERR|||103^Table value not found^HL70357|E',
      'ERR|PID^1^3^204&Unknown key identifier',
    ].join('\r'),
  );
  t.true(parsed.ok);
  if (parsed.ok)
    t.is(parsed.ack.text, 'cannot file; patient unknown; Table value not found; PID 1 3 204&Unknown key identifier');
  // The codes (HL7 table 0357) are kept apart from the text: they decide retry or park and may be logged.
  if (parsed.ok) t.deepEqual(parsed.ack.errorCodes, ['207', '103', '204']);
});

test('a reason about an answer that is not an ACK never quotes it (it may be a message with a PID)', (t) => {
  const reason = (parseAck('MSH|^~\\&|RIS\rPID|1||12345^^^HOSP||DOE^JANE\r') as { reason: string }).reason;
  t.regex(reason, /no MSA segment: an answer of \d+ characters starting with segment MSH/);
  t.notRegex(reason, /DOE|JANE|12345/);
});

test('tolerates leading whitespace, a BOM and blank lines', (t) => {
  const parsed = parseAck(`\uFEFFMSH|^~\\&|RIS\r\n\r\n  MSA|CA|${ID}\r\n`);
  t.like(parsed, { ok: true, ack: { code: 'CA', controlId: ID } });
});

test('says what is missing when the answer is not an ACK', (t) => {
  t.like(parseAck('hello'), { ok: false });
  t.regex((parseAck('hello') as { reason: string }).reason, /no MSH segment/);
  t.regex((parseAck('MSH|^~\\&|RIS\rPID|1\r') as { reason: string }).reason, /no MSA segment/);
  t.regex((parseAck(`MSH|^~\\&|RIS\rMSA||${ID}\r`) as { reason: string }).reason, /MSA-1 .* is empty/);
});

const ack = (code: string, controlId = ID, text = ''): Hl7Ack => ({ code, controlId, text });

test('AA with our control ID is accepted, in both modes', (t) => {
  t.deepEqual(interpretAck(ack('AA'), ID, 'original'), { kind: 'accepted', ackCode: 'AA' });
  t.deepEqual(interpretAck(ack('AA'), ID, 'enhanced'), { kind: 'accepted', ackCode: 'AA' });
});

test('CA is accepted only in enhanced mode', (t) => {
  t.deepEqual(interpretAck(ack('CA'), ID, 'enhanced'), { kind: 'accepted', ackCode: 'CA' });
  t.like(interpretAck(ack('CA'), ID, 'original'), { kind: 'retry', cause: 'unexpected-ack-code' });
});

test('AE and CE are retried; the reason gives the error code and the text length, the text travels apart as peerText', (t) => {
  const ae = interpretAck({ ...ack('AE', ID, 'patient DOE^JANE unknown'), errorCodes: ['207'] }, ID, 'original');
  t.like(ae, { kind: 'retry', cause: 'application-error', peerText: 'patient DOE^JANE unknown' });
  const reason = (ae as { reason: string }).reason;
  t.regex(reason, /AE \(application error\) \(error code 207; 24 characters of text, logged at debug level only\)/);
  t.notRegex(reason, /DOE|JANE/);
  t.like(interpretAck(ack('CE'), ID, 'enhanced'), { kind: 'retry', cause: 'commit-error' });
  t.false('peerText' in interpretAck(ack('CE'), ID, 'enhanced'));
});

test('AE with a code that refuses the message itself (100-103, 200-203) is parked; 204, 206, 207 are retried', (t) => {
  for (const code of ['100', '101', '102', '103', '200', '201', '202', '203']) {
    t.like(
      interpretAck({ ...ack('AE'), errorCodes: [code] }, ID, 'original'),
      { kind: 'parked', cause: 'application-error-message' },
      code,
    );
  }
  for (const code of ['204', '206', '207'])
    t.like(
      interpretAck({ ...ack('AE'), errorCodes: [code] }, ID, 'original'),
      { kind: 'retry', cause: 'application-error' },
      code,
    );
});

test('AR and CR are parked, not retried; the reason holds no RIS text', (t) => {
  const ar = interpretAck(ack('AR', ID, 'duplicate order for DOE^JANE'), ID, 'original');
  t.like(ar, { kind: 'parked', cause: 'application-reject', peerText: 'duplicate order for DOE^JANE' });
  t.regex((ar as { reason: string }).reason, /AR \(application reject\) \(28 characters of text/);
  t.notRegex((ar as { reason: string }).reason, /duplicate|JANE/);
  t.like(interpretAck(ack('CR'), ID, 'enhanced'), { kind: 'parked', cause: 'commit-reject' });
});

test('an ACK for another control ID is never success, whatever MSA-1 says', (t) => {
  for (const code of ['AA', 'CA', 'AR']) {
    const outcome = interpretAck(ack(code, 'SOMEONE-ELSE'), ID, 'enhanced');
    t.like(outcome, { kind: 'retry', cause: 'control-id-mismatch' });
    t.regex(
      (outcome as { reason: string }).reason,
      /MSA-2 'SOMEONE-ELSE', which is not our control ID 'CXR0123456789ABCDEFG'/,
    );
  }
});

test('an unknown MSA-1 is retried, not taken as success', (t) => {
  t.like(interpretAck(ack('OK'), ID, 'enhanced'), { kind: 'retry', cause: 'unexpected-ack-code' });
});
