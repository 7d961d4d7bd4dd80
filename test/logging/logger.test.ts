import test from 'ava';
import { PassThrough } from 'node:stream';
import { createLogger } from '../../src/logging/logger.js';

function capture(level: 'info' | 'debug', format: 'json' | 'pretty' = 'json') {
  const stream = new PassThrough();
  const lines: string[] = [];
  stream.on('data', (d: Buffer) => lines.push(...d.toString().split('\n').filter(Boolean)));
  return { logger: createLogger({ level, format, stream }), lines };
}

test('JSON lines carry the ids passed with a message', async (t) => {
  const { logger, lines } = capture('info');
  logger.info('instance stored', {
    event: 'DIMSE-1020',
    studyInstanceUid: '1.2.3',
    sopInstanceUid: '1.2.3.4',
    associationId: 'ab12',
  });
  await new Promise((resolve) => setImmediate(resolve));
  const entry = JSON.parse(lines[0] ?? '{}') as Record<string, unknown>;
  t.like(entry, {
    level: 'info',
    event: 'DIMSE-1020',
    message: 'instance stored',
    studyInstanceUid: '1.2.3',
    sopInstanceUid: '1.2.3.4',
    associationId: 'ab12',
  });
  t.truthy(entry.timestamp);
});

test('patient names and IDs are dropped at info and above, kept at debug', async (t) => {
  const { logger, lines } = capture('debug');
  logger.info('x', { event: 'DIMSE-1020', patientName: 'DOE^JANE', patientId: 'P123', studyInstanceUid: '1.2' });
  logger.warn('y', { event: 'DIMSE-1022', patientName: 'DOE^JANE' });
  logger.debug('z', { patientName: 'DOE^JANE' });
  await new Promise((resolve) => setImmediate(resolve));
  t.is(lines.length, 3);
  t.notRegex(lines[0] ?? '', /DOE|P123/);
  t.regex(lines[0] ?? '', /studyInstanceUid/);
  t.notRegex(lines[1] ?? '', /DOE/);
  t.regex(lines[2] ?? '', /DOE\^JANE/);
});

test('pretty format is one readable line with key=value fields', async (t) => {
  const { logger, lines } = capture('info', 'pretty');
  logger.info('association accepted', { event: 'DIMSE-1001', callingAe: 'DX1' });
  await new Promise((resolve) => setImmediate(resolve));
  t.regex(lines[0] ?? '', /info\s+association accepted\s+event=DIMSE-1001 callingAe=DX1$/);
});

test('a line stays one JSON record under one pipe write: long fields are cut, control bytes escaped', async (t) => {
  const { logger, lines } = capture('info');
  logger.warn('image failed', {
    event: 'ANALYSIS-5011',
    sopInstanceUid: '1.2.3',
    why: `a\u0000b${'x'.repeat(10_000)}`,
  });
  await new Promise((resolve) => setImmediate(resolve));
  t.is(lines.length, 1);
  const line = lines[0] ?? '';
  t.false(line.includes('\u0000'), 'NUL is escaped by JSON, never written raw');
  t.true(Buffer.byteLength(line) < 4096);
  const entry = JSON.parse(line) as Record<string, unknown>;
  t.regex(String(entry.why), /^a\u0000bx+\.\.\. \(8979 more characters cut\)$/);
  t.is(entry.sopInstanceUid, '1.2.3');
});

test('a line above debug without an event code, with a code of another level or an unknown one, does not compile', async (t) => {
  const { logger, lines } = capture('debug');
  // tsc checks these: each @ts-expect-error fails the build if the line were accepted.
  // @ts-expect-error info, warn and error need an event code
  logger.info('no code', { studyInstanceUid: '1.2' });
  // @ts-expect-error DIMSE-1022 is a warn event, not an info one
  logger.info('wrong level', { event: 'DIMSE-1022' });
  // @ts-expect-error not a code in the catalogue
  logger.error('typo', { event: 'DIMSE-9999' });
  logger.debug('debug lines need none', { studyInstanceUid: '1.2' });
  await new Promise((resolve) => setImmediate(resolve));
  t.is(lines.length, 4);
});
