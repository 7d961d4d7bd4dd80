import test from 'ava';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { makeImageFile, writeImageFile } from '../helpers/dicom-factory.js';
import { PATIENT_NAME, SPECIFIC_CHARACTER_SET, STANDARD_EXAMPLES, withRawElements } from '../dicom/charset-fixtures.js';
import { runCli } from '../helpers/gateway-process.js';
import { tinyModelDir } from '../helpers/tiny-densenet.js';
import { ENGINE_ORDER } from '../../src/engines/engine-types.js';

test('classify prints the class and probabilities of a frontal chest image, and why others are skipped', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'classify-'));
  const pa = await writeImageFile(dir, { viewPosition: 'PA' });
  const lateral = await writeImageFile(dir, { viewPosition: 'LL' });
  const hand = await writeImageFile(dir, { bodyPartExamined: 'HAND' });
  const result = await runCli(['classify', pa.path, lateral.path, hand.path, '--model', tinyModelDir(), '--json']);
  t.is(result.code, 0, result.stderr);
  const out = JSON.parse(result.stdout) as { engine: string; device: string; results: Array<Record<string, unknown>> };
  // The engine the config's inference.engine (auto) gives: ONNX Runtime here, TF.js where it cannot start.
  t.true((ENGINE_ORDER as readonly string[]).includes(out.engine), out.engine);
  t.true(out.device.length > 0);
  const [first, second, third] = out.results;
  t.like(first, { status: 'classified' });
  const probabilities = Object.values(first?.probabilities as Record<string, number>);
  t.deepEqual(Object.keys(first?.probabilities as object), ['COVID-19', 'pneumonia', 'normal']);
  t.true(Math.abs(probabilities.reduce((a, b) => a + b, 0) - 1) < 1e-3);
  t.like(second, { status: 'skipped', reason: 'ViewPosition is LL, not one of PA, AP' });
  t.like(third, { status: 'skipped', reason: 'BodyPartExamined is HAND, not one of CHEST' });
});

test('model check prints the model card and refuses a tampered model', async (t) => {
  const ok = await runCli(['model', 'check', tinyModelDir()]);
  t.is(ok.code, 0, ok.stderr);
  t.regex(ok.stdout, /classes\s+0: COVID-19, 1: pneumonia, 2: normal/);
  t.regex(ok.stdout, /sha256 [0-9a-f]{64} verified, 81 tensors checked/);
  const bad = await runCli(['model', 'check', tinyModelDir({ classes: ['a', 'b', 'c', 'd'] })]);
  t.is(bad.code, 1);
  t.regex(bad.stderr, /classes: lists 4 classes but architecture\.numClasses is 3/);
});

test('classify reads Japanese, Korean and Chinese images with ISO 2022 code extensions, and an unknown character set', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'classify-charsets-'));
  const files: string[] = [];
  const texts: Array<[string, Buffer]> = [
    ...Object.values(STANDARD_EXAMPLES).map((e): [string, Buffer] => [e.charset, e.bytes]),
    ['ISO_IR 999', Buffer.from('Jos\xe9', 'latin1')],
  ];
  for (const [i, [charset, name]] of texts.entries()) {
    const file = path.join(dir, `charset-${i}.dcm`);
    writeFileSync(
      file,
      withRawElements(makeImageFile({ rows: 64, columns: 64, seed: i }).bytes, [
        { tag: SPECIFIC_CHARACTER_SET, vr: 'CS', bytes: Buffer.from(charset, 'latin1') },
        { tag: PATIENT_NAME, vr: 'PN', bytes: name },
      ]),
    );
    files.push(file);
  }
  const result = await runCli(['classify', ...files, '--model', tinyModelDir(), '--json']);
  t.is(result.code, 0, result.stderr);
  const out = JSON.parse(result.stdout) as { results: Array<Record<string, unknown>> };
  t.is(out.results.length, files.length);
  for (const r of out.results) t.like(r, { status: 'classified' }, JSON.stringify(r));
  t.deepEqual(out.results.at(-1)?.textWarnings, [
    'unknown Specific Character Set term "ISO_IR 999": text read as Latin-1',
  ]);
  t.is(out.results[0]?.textWarnings, undefined, 'no note when every term is known');
});

test('classify --json gives full-precision probabilities, the logits per class, and the engine that made them', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'classify-json-'));
  const image = await writeImageFile(dir, { seed: 3 });
  const result = await runCli(['classify', image.path, '--model', tinyModelDir(), '--engine', 'tfjs', '--json']);
  t.is(result.code, 0, result.stderr);
  const out = JSON.parse(result.stdout) as {
    engine: string;
    device: string;
    results: Array<{ probabilities: Record<string, number>; logits: Record<string, number>; predicted: string }>;
  };
  t.is(out.engine, 'tfjs');
  const [first] = out.results;
  if (first === undefined) return t.fail();
  t.deepEqual(Object.keys(first.logits), ['COVID-19', 'pneumonia', 'normal']);
  // The probabilities are the softmax of the printed logits as computed, not rounded to a few decimals.
  const logits = Object.values(first.logits);
  const top = Math.max(...logits);
  const exps = logits.map((l) => Math.exp(l - top));
  const total = exps.reduce((a, b) => a + b, 0);
  Object.values(first.probabilities).forEach((p, i) => t.true(Math.abs(p - (exps[i] ?? 0) / total) < 1e-12));
  t.true(
    Object.values(first.probabilities).some((p) => Number(p.toFixed(6)) !== p),
    'more digits than any rounding',
  );
  const bad = await runCli(['classify', image.path, '--model', tinyModelDir(), '--engine', 'pytorch']);
  t.not(bad.code, 0);
  t.regex(bad.stderr, /--engine must be one of auto, onnxruntime, tfjs, got 'pytorch'/);
});
