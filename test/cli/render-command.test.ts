// Specification of src/cli/render-command.ts (kept with the reporting specifications it exercises end to end).
import test from 'ava';
import { loadImage } from '@napi-rs/canvas';
import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { renderCommand } from '../../src/cli/render-command.js';
import { ENGINE_ORDER } from '../../src/engines/engine-types.js';
import { GatewayError } from '../../src/errors.js';
import { overlaySize } from '../../src/reporting/heatmap-overlay.js';
import { dciodvfy, writeImageFile } from '../helpers/dicom-factory.js';
import { readBack } from '../reporting/reporting-fixtures.js';
import { tinyModelDir } from '../helpers/tiny-densenet.js';

function capture() {
  let text = '';
  return { io: { stdout: { write: (s: string) => (text += s) }, env: {} }, output: () => text };
}

test.serial('render classifies, explains and writes a PNG of the heatmap picture', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'render-'));
  const source = await writeImageFile(dir, { rows: 180, columns: 150, sopClass: 'cr' });
  const modelDir = tinyModelDir();
  const png = path.join(dir, 'overlay.png');
  const out = capture();
  const code = await renderCommand([source.path, '--png', png, '--model', modelDir, '--json'], out.io);
  t.is(code, 0);
  const report = JSON.parse(out.output()) as {
    predicted: string;
    probabilities: Record<string, number>;
    explainedClass: string;
    engine: string;
    device: string;
    backend: string;
    rows: number;
    columns: number;
    timings: Record<string, number>;
  };
  t.log(JSON.stringify(report));
  t.deepEqual(Object.keys(report.probabilities), ['COVID-19', 'pneumonia', 'normal']);
  t.is(report.explainedClass, report.predicted);
  // The engine the config's inference.engine (auto) gives: ONNX Runtime here, TF.js where it cannot start.
  t.true((ENGINE_ORDER as readonly string[]).includes(report.engine), report.engine);
  t.is(report.backend, `${report.engine}/${report.device}`);
  const image = await loadImage(readFileSync(png));
  t.deepEqual([image.width, image.height], [overlaySize(180, 150).columns, overlaySize(180, 150).rows]);
  t.deepEqual([report.columns, report.rows], [image.width, image.height]);

  const pair = path.join(dir, 'pair.png');
  const side = capture();
  t.is(
    await renderCommand(
      [
        source.path,
        '--png',
        pair,
        '--model',
        modelDir,
        '--layout',
        'side-by-side',
        '--composite',
        'epsilon',
        '--target',
        'normal',
      ],
      side.io,
    ),
    0,
  );
  t.regex(side.output(), /heatmap for normal \(LRP epsilon, (onnxruntime|tfjs)\/\w+\) -> .*pair\.png {2}300 x \d+/);
  t.is((await loadImage(readFileSync(pair))).width, 2 * image.width);
});

test.serial(
  'render --sc writes the Secondary Capture the daemon would send, with every rule parameter named',
  async (t) => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'render-'));
    const source = await writeImageFile(dir, { rows: 160, columns: 140 });
    const sc = path.join(dir, 'overlay-sc.dcm');
    const out = capture();
    t.is(await renderCommand([source.path, '--sc', sc, '--model', tinyModelDir(), '--json'], out.io), 0);
    const report = JSON.parse(out.output()) as {
      sc: string;
      png?: string;
      parameters: string;
      rows: number;
      columns: number;
    };
    t.is(report.sc, sc);
    t.is(report.png, undefined, 'no PNG asked for');
    t.is(report.parameters, 'epsilon 0.01, alpha 2, beta 1');
    t.deepEqual((await dciodvfy(sc)).errors, []);
    const ds = readBack(readFileSync(sc));
    t.deepEqual([ds.Rows, ds.Columns], [report.rows, report.columns]);
    t.regex(String(ds.DerivationDescription), /^LRP \(isnet, epsilon 0\.01, alpha 2, beta 1\)/);
    t.is(ds.StudyInstanceUID, source.studyInstanceUid);
  },
);

test.serial('render --help prints its usage', async (t) => {
  const out = capture();
  t.is(await renderCommand(['--help'], out.io), 0);
  t.regex(out.output(), /cxr-gateway render FILE\.dcm --png OUT\.png/);
});

test.serial('render refuses bad arguments with a usage error', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'render-'));
  const source = await writeImageFile(dir, {});
  const modelDir = tinyModelDir();
  const cases: Array<[string[], RegExp]> = [
    [[source.path, '--model', modelDir], /needs --png/],
    [[source.path, '--png', 'x.png', '--layout', 'mosaic'], /--layout must be overlay or side-by-side/],
    [[source.path, '--png', 'x.png', '--composite', 'gradient'], /--composite must be one of isnet, epsilon/],
    [[source.path, '--png', 'x.png', '--model', modelDir, '--target', 'fracture'], /not a class of tiny-test/],
    [[], /exactly one DICOM file/],
    [[source.path, '--png', 'x.png', '--colour', 'red'], /Unknown option '--colour'/],
  ];
  for (const [args, message] of cases) {
    const error = await t.throwsAsync(renderCommand(args, capture().io), { instanceOf: GatewayError });
    t.is((error as GatewayError).code, 'USAGE');
    t.regex(error?.message ?? '', message);
  }
});

test.serial('render --engine names the engine for this run; an unknown name is a usage error', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'render-engine-'));
  const source = await writeImageFile(dir, { rows: 100, columns: 100 });
  const out = capture();
  const args = [source.path, '--png', path.join(dir, 'o.png'), '--model', tinyModelDir(), '--json'];
  t.is(await renderCommand([...args, '--engine', 'tfjs'], out.io), 0);
  t.like(JSON.parse(out.output()), { engine: 'tfjs' });
  await t.throwsAsync(renderCommand([...args, '--engine', 'pytorch'], capture().io), {
    instanceOf: GatewayError,
    message: "--engine must be one of auto, onnxruntime, tfjs, got 'pytorch'",
  });
});
