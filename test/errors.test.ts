import test from 'ava';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  ERROR_CODES,
  GatewayError,
  codedReason,
  errorCode,
  isErrorCode,
  unreachable,
  type ErrorCode,
} from '../src/errors.js';

const DOCS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../docs/errors.md');

test('every code is UPPER_SNAKE and its sentence says what it means, then what to do', (t) => {
  for (const [code, sentence] of Object.entries(ERROR_CODES)) {
    t.regex(code, /^[A-Z][A-Z0-9]*(_[A-Z0-9]+)*$/, code);
    t.true(sentence.includes('; '), `${code}: meaning; action`);
    t.true(sentence.endsWith('.'), `${code}: one sentence`);
    t.true(sentence.length <= 200, `${code}: short enough for a log line`);
  }
});

test('docs/errors.md lists exactly the catalogue, in its order, with the same sentences', (t) => {
  const rows = readFileSync(DOCS, 'utf8')
    .split('\n')
    .map((line) => /^\| `([A-Z0-9_]+)` \| (.+) \| (.+) \|$/.exec(line))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => [m[1], `${m[2]}; ${m[3]}`] as const);
  t.deepEqual(
    rows.map(([code]) => code),
    Object.keys(ERROR_CODES),
    'docs/errors.md is out of date: npx tsc -p tsconfig.json && node tools/errors-doc.mjs',
  );
  for (const [code, sentence] of rows) t.is(sentence, ERROR_CODES[code as ErrorCode], code);
});

test('isErrorCode knows the catalogue and nothing else', (t) => {
  t.true(isErrorCode('WORKER_CRASHED'));
  t.false(isErrorCode('worker-crashed'));
  t.false(isErrorCode('toString'));
  t.false(isErrorCode(undefined));
});

test('unreachable throws INTERNAL; errorCode keeps a GatewayError code and falls back otherwise', (t) => {
  const error = t.throws(() => unreachable('a test'), { instanceOf: GatewayError, code: 'INTERNAL' });
  t.is(errorCode(error, 'PROCESSING_FAILED'), 'INTERNAL');
  t.is(errorCode(new Error('plain'), 'PROCESSING_FAILED'), 'PROCESSING_FAILED');
  t.is(codedReason('NO_SPACE', 'no disk space'), 'NO_SPACE: no disk space');
});

test('a code outside the catalogue does not compile', (t) => {
  // @ts-expect-error: 'CONFIG_INVAILD' is not an ErrorCode; tsc fails the build if this line ever compiles.
  const typo = new GatewayError('CONFIG_INVAILD', 'a typo');
  t.false(isErrorCode(typo.code));
});
