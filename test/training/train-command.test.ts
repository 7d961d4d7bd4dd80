import test from 'ava';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { train } from '../../src/cli/train-command.js';
import { readManifest } from '../../src/inference/model-manifest.js';
import { writePngDataset } from './png-dataset.js';

function capture() {
  const out: string[] = [];
  const err: string[] = [];
  return {
    out,
    err,
    io: {
      stdout: { write: (s: string) => out.push(s) > 0 },
      stderr: { isTTY: false, write: (s: string) => err.push(s) > 0 },
    },
  };
}

test('train --config with flag overrides writes the model and prints one JSON line per record', async (t) => {
  const root = mkdtempSync(path.join(os.tmpdir(), 'train-cli-'));
  writePngDataset(path.join(root, 'data'), 4, 32, 3);
  writeFileSync(
    path.join(root, 'train.yaml'),
    [
      'seed: 3',
      'output: model',
      'model:',
      '  name: cli-tiny',
      '  architecture: { growthRate: 4, blockConfig: [1, 1], numInitFeatures: 8 }',
      '  preprocessing: { inputSize: 32 }',
      '  intendedUse: Test only. Not for diagnostic use.',
      'target:',
      '  data: { format: labels-csv, dir: data }',
      '  training: { epochs: 5 }',
    ].join('\n'),
  );
  const c = capture();
  const code = await train(
    [
      '--config',
      path.join(root, 'train.yaml'),
      '--epochs',
      '1',
      '--max-steps',
      '1',
      '--batch-size',
      '4',
      '--no-augment',
    ],
    c.io,
  );
  t.is(code, 0);
  const records = c.out
    .join('')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { type: string; epochs?: number });
  t.deepEqual(
    [...new Set(records.map((r) => r.type))],
    ['start', 'init', 'head', 'data', 'epoch', 'stage-end', 'model'],
  );
  t.is(records.find((r) => r.type === 'epoch')?.epochs, 1, '--epochs overrides the file');
  const manifest = readManifest(path.join(root, 'model'));
  t.is(manifest.name, 'cli-tiny');
  t.regex(c.err.join(''), /model written to .*model check/);
  t.is(
    readFileSync(path.join(root, 'model', 'training-log.jsonl'), 'utf8')
      .trim()
      .split('\n').length,
    records.length,
  );
});

test('train refuses a bad config value naming the key, and a bad flag', async (t) => {
  const c = capture();
  await t.throwsAsync(train(['--data', 'x', '--out', 'y', '--optimizer', 'rmsprop'], c.io), {
    message: /optimiser\.name/,
  });
  await t.throwsAsync(train(['--data', 'x', '--out', 'y', '--epochs', 'many'], c.io), {
    message: /--epochs needs a number/,
  });
  await t.throwsAsync(train(['--bogus'], c.io), { message: /Unknown option '--bogus'/ });
});
