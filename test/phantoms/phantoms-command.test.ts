// Specification of `cxr-gateway phantoms` (src/cli/phantoms-command.ts): it writes the dataset and a summary, exits
// 2 with the usage on bad arguments and 1 when the folder cannot be used, and prints its help.

import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import test from 'ava';
import { phantomsCommand } from '../../src/cli/phantoms-command.js';

interface Captured {
  code: number;
  stdout: string;
  stderr: string;
}

async function run(args: string[]): Promise<Captured> {
  let stdout = '';
  let stderr = '';
  const code = await phantomsCommand(args, {
    stdout: { write: (chunk: string) => ((stdout += chunk), true) },
    stderr: { write: (chunk: string) => ((stderr += chunk), true) },
  });
  return { code, stdout, stderr };
}

let workDir = '';
test.before(async () => {
  workDir = await mkdtemp(path.join(tmpdir(), 'phantoms-cli-'));
});
test.after.always(async () => {
  if (workDir) await rm(workDir, { recursive: true, force: true });
});

test('writes the dataset and prints what it wrote', async (t) => {
  const out = path.join(workDir, 'demo');
  const r = await run([
    '--out',
    out,
    '--n',
    '6',
    '--seed',
    '3',
    '--size',
    '64',
    '--classes',
    'pneumonia,covid',
    '--text-markers',
    '--syntax',
    'rle',
  ]);
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /wrote 6 phantom image\(s\) in 6 studies to .*demo/);
  t.regex(r.stdout, /classes: +pneumonia 3, covid 3/);
  t.deepEqual((await readdir(out)).sort(), ['images', 'labels.csv', 'masks']);
  const labels = (await readFile(path.join(out, 'labels.csv'), 'utf8')).trim().split('\n');
  t.is(labels.length, 7);
  t.true(
    labels.slice(1).every((line) => line.includes(',1.2.840.10008.1.2.5,')),
    'every file RLE',
  );
});

test('--json prints the summary as JSON', async (t) => {
  const r = await run(['--out', path.join(workDir, 'json'), '--n', '2', '--size', '48', '--json', '--previews']);
  t.is(r.code, 0, r.stderr);
  const summary = JSON.parse(r.stdout) as { count: number; byBodyPart: Record<string, number> };
  t.is(summary.count, 2);
  t.deepEqual(summary.byBodyPart, { CHEST: 2 });
  t.is((await readdir(path.join(workDir, 'json', 'previews'))).length, 2);
});

test('bad arguments exit 2 with a sentence and the usage', async (t) => {
  const cases: Array<[string[], RegExp]> = [
    [['--n', '3'], /--out DIR is required/],
    [['--out', path.join(workDir, 'x1')], /--n is required/],
    [['--out', path.join(workDir, 'x2'), '--n', 'many'], /--n must be a non-negative integer/],
    [['--out', path.join(workDir, 'x3'), '--n', '2', '--classes', 'flu'], /unknown class 'flu'/],
    [['--out', path.join(workDir, 'x4'), '--n', '2', '--syntax', 'jpeg-xl'], /unknown syntax 'jpeg-xl'/],
    [
      ['--out', path.join(workDir, 'x5'), '--n', '2', '--lateral-fraction', '2'],
      /--lateral-fraction must be a number from 0 to 1/,
    ],
    [['--out', path.join(workDir, 'x6'), '--n', '2', '--size', '9'], /size must be an integer from 32/],
    [['--out', path.join(workDir, 'x7'), '--n', '2', '--frobnicate'], /Unknown option '--frobnicate'/],
  ];
  for (const [args, message] of cases) {
    const r = await run(args);
    t.is(r.code, 2, args.join(' '));
    t.regex(r.stderr, message);
    t.regex(r.stderr, /Usage:/);
  }
  t.deepEqual(
    (await readdir(workDir)).filter((n) => n.startsWith('x')),
    [],
    'nothing created for refused arguments',
  );
});

test('a folder that is not empty exits 1 and is left alone', async (t) => {
  const busy = path.join(workDir, 'busy');
  await run(['--out', busy, '--n', '1', '--size', '48']);
  await writeFile(path.join(busy, 'note.txt'), 'keep me');
  const r = await run(['--out', busy, '--n', '1', '--size', '48']);
  t.is(r.code, 1);
  t.regex(r.stderr, /is not empty; give --out a new or empty folder/);
  t.is(await readFile(path.join(busy, 'note.txt'), 'utf8'), 'keep me');
});

test('--help prints the usage and exits 0', async (t) => {
  const r = await run(['--help']);
  t.is(r.code, 0);
  t.regex(r.stdout, /cxr-gateway phantoms --out DIR --n N/);
  t.regex(r.stdout, /--syntax NAME +explicit \| implicit \| jpeg-lossless/);
});
