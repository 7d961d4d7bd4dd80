// Library output becomes log records instead of raw lines (dcmjs's loglevel logger, console.*), and a log on an fd
// of its own (CXR_GATEWAY_LOG_FD) carries nothing but our JSON.

import test from 'ava';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import dcmjs from 'dcmjs';
import { libraryMessage, routeConsole, routeDcmjsLogs, type LibraryLogSink } from '../../src/logging/library-logs.js';

function captureSink(): {
  sink: LibraryLogSink;
  records: Array<{ level: string; message: string; fields: Record<string, unknown> }>;
} {
  const records: Array<{ level: string; message: string; fields: Record<string, unknown> }> = [];
  return {
    records,
    sink: {
      warn: (message, fields) => records.push({ level: 'warn', message, fields }),
      debug: (message, fields) => records.push({ level: 'debug', message, fields }),
    },
  };
}

test.serial(
  'dcmjs warnings (root and child loggers, also ones created later) reach the sink, NUL bytes made visible',
  (t) => {
    const { sink, records } = captureSink();
    routeDcmjsLogs(sink);
    dcmjs.log.setLevel('debug');
    const log = dcmjs.log as unknown as { warn: (...a: unknown[]) => void; debug: (...a: unknown[]) => void };
    log.warn('Invalid vr type \0\0 - using UN');
    log.debug('numPixels: 4');
    (dcmjs.log.getLogger('validation.dcmjs') as unknown as { warn: (...a: unknown[]) => void }).warn('value too long');
    (dcmjs.log.getLogger('created.later') as unknown as { error: (...a: unknown[]) => void }).error(new Error('boom'));
    dcmjs.log.setLevel('warn');
    t.deepEqual(records, [
      {
        level: 'warn',
        message: 'library message',
        fields: { event: 'GATEWAY-7020', library: 'dcmjs', detail: 'Invalid vr type \\x00\\x00 - using UN' },
      },
      { level: 'debug', message: 'library message', fields: { library: 'dcmjs', detail: 'numPixels: 4' } },
      {
        level: 'warn',
        message: 'library message',
        fields: { event: 'GATEWAY-7020', library: 'dcmjs:validation.dcmjs', detail: 'value too long' },
      },
      {
        level: 'warn',
        message: 'library message',
        fields: { event: 'GATEWAY-7020', library: 'dcmjs:created.later', detail: 'boom' },
      },
    ]);
  },
);

test.serial('console output of libraries becomes records (warn for warn/error, debug for the rest)', (t) => {
  const { sink, records } = captureSink();
  const saved = {
    log: console.log,
    warn: console.warn,
    info: console.info,
    debug: console.debug,
    error: console.error,
    trace: console.trace,
  };
  t.teardown(() => Object.assign(console, saved));
  routeConsole(sink);
  console.log('********* InlineBinary already set', { a: 1 });
  console.warn('Unknown tag info');
  t.deepEqual(records, [
    {
      level: 'debug',
      message: 'library message',
      fields: { library: 'console', detail: '********* InlineBinary already set {"a":1}' },
    },
    {
      level: 'warn',
      message: 'library message',
      fields: { event: 'GATEWAY-7020', library: 'console', detail: 'Unknown tag info' },
    },
  ]);
});

test('libraryMessage makes control bytes visible and caps the length', (t) => {
  t.is(libraryMessage(['a\u0001b', 7]), 'a\\x01b 7');
  t.is(libraryMessage(['x'.repeat(5000)]).length, 2000);
});

const LOGGER = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src/logging/logger.js');

test('with CXR_GATEWAY_LOG_FD the JSON log goes to that fd, and what a library prints on stdout stays off it', async (t) => {
  // The child logs two records, prints like a native library would (raw bytes, NUL, no newline), and logs again.
  const script = `
    const { createLogger } = await import(${JSON.stringify(LOGGER)});
    const logger = createLogger({ level: 'info', format: 'json' });
    logger.info('first', { event: 'DIMSE-1020', studyInstanceUid: '1.2.3' });
    process.stdout.write('warning:\\n' + 'native text\\u0000 without newline');
    console.log('a library line');
    logger.warn('second', { event: 'DIMSE-1022', detail: 'x'.repeat(5000) });
  `;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
    stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
    env: { ...process.env, CXR_GATEWAY_LOG_FD: '3' },
  });
  const read = (stream: NodeJS.ReadableStream | null) => {
    const chunks: Buffer[] = [];
    stream?.on('data', (c: Buffer) => chunks.push(c));
    return () => Buffer.concat(chunks).toString('utf8');
  };
  const stdout = read(child.stdout);
  const stderr = read(child.stderr);
  const log = read(child.stdio[3] as NodeJS.ReadableStream);
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
  t.is(code, 0, stderr());
  const lines = log()
    .split('\n')
    .filter((l) => l !== '');
  const records = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  t.deepEqual(
    records.map((r) => [r.level, r.event]),
    [
      ['info', 'DIMSE-1020'],
      ['warn', 'DIMSE-1022'],
    ],
  );
  t.true(
    lines.every((l) => Buffer.byteLength(l) < 4096),
    'every line fits one atomic pipe write',
  );
  t.regex(String(records[1]?.detail), /\.\.\. \(3976 more characters cut\)$/);
  t.is(
    stdout(),
    'warning:\nnative text\u0000 without newline',
    'the native-style bytes stayed on stdout; console went to the log (at debug, below info)',
  );
});
