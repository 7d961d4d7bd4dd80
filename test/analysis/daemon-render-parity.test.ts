// Specification of the one analysis path (src/analysis/analyse-images.ts), across processes: the daemon (storescu
// -> store -> worker thread -> folder PACS) and `cxr-gateway render --sc` fed the same file and the same config
// give the same heatmap picture, byte for byte, and both record every LRP rule's parameters.
import test from 'ava';
import type { NaturalDataset } from 'dcmjs';
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { storescu } from '../helpers/dcmtk.js';
import { newUid, writeImageFile } from '../helpers/dicom-factory.js';
import { runCli, startGateway } from '../helpers/gateway-process.js';
import { tinyModelDir } from '../helpers/tiny-densenet.js';
import { waitUntil } from '../helpers/wait-until.js';
import { readBack } from '../reporting/reporting-fixtures.js';

function textValues(items: readonly NaturalDataset[] | undefined): string[] {
  return (items ?? []).flatMap((item) => [
    ...(typeof item.TextValue === 'string' ? [item.TextValue] : []),
    ...textValues(item.ContentSequence as NaturalDataset[] | undefined),
  ]);
}

test('render --sc and the daemon write the same heatmap pixels for the same file and config, and both name alpha and beta', async (t) => {
  const out = mkdtempSync(path.join(os.tmpdir(), 'parity-out-'));
  // Not the defaults (alpha 2, beta 1): the site's values must reach the worker's engine and render's alike.
  const gateway = await startGateway({
    models: { tiny: tinyModelDir() },
    inference: { defaultModel: 'tiny', workers: 1, backend: 'wasm' },
    explain: { composite: 'isnet', alpha: 3, beta: 2 },
    destinations: { pacs: [{ type: 'folder', name: 'pacs-folder', path: path.join(out, 'dicom') }], ris: [] },
    rules: [
      {
        name: 'chest',
        match: { attributes: { Modality: { oneOf: ['CR', 'DX'] } } },
        action: { model: 'tiny', outputs: ['sc', 'sr'], pacs: ['pacs-folder'], ris: [] },
      },
    ],
  } as never);
  t.teardown(() => gateway.stop());
  const studyInstanceUid = newUid();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'parity-in-'));
  const source = await writeImageFile(dir, { studyInstanceUid, rows: 200, columns: 160, seed: 11 });
  t.is((await storescu(gateway.port, [source.path])).code, 0);

  const studyDir = path.join(out, 'dicom', studyInstanceUid);
  // Objects land by rename (atomic): two named objects present means both are complete. The hidden temporary
  // file of one still being written sits in the same folder and is not one of them.
  const objects = (): string[] =>
    existsSync(studyDir) ? readdirSync(studyDir).filter((name) => !name.startsWith('.') && name.endsWith('.dcm')) : [];
  await waitUntil(() => objects().length === 2, 'the SC and SR in the PACS folder', 90_000);
  const written = objects().map((name) => readBack(readFileSync(path.join(studyDir, name))));
  const daemonSc = written.find((ds) => ds.Modality === 'OT');
  const daemonSr = written.find((ds) => ds.Modality === 'SR');
  if (daemonSc === undefined || daemonSr === undefined) return t.fail('the daemon wrote no SC or no SR');

  const renderedFile = path.join(dir, 'render-sc.dcm');
  const rendered = await runCli([
    'render',
    source.path,
    '--config',
    gateway.configPath,
    '--sc',
    renderedFile,
    '--json',
  ]);
  t.is(rendered.code, 0, rendered.stderr);
  const report = JSON.parse(rendered.stdout) as { parameters: string; composite: string };
  const renderSc = readBack(readFileSync(renderedFile));

  const pixels = (ds: NaturalDataset) => Buffer.from((ds.PixelData as ArrayBuffer[])[0] ?? new ArrayBuffer(0));
  t.deepEqual([renderSc.Rows, renderSc.Columns], [daemonSc.Rows, daemonSc.Columns]);
  t.true(pixels(daemonSc).length > 0);
  t.true(pixels(renderSc).equals(pixels(daemonSc)), 'byte-identical heatmap pixels');
  // The same derived object: the same UID and the same description of how it was made.
  t.is(renderSc.SOPInstanceUID, daemonSc.SOPInstanceUID);
  t.is(renderSc.DerivationDescription, daemonSc.DerivationDescription);

  // isnet's alpha-beta rule is recorded with its values in the SC, the SR and render's report.
  t.is(report.composite, 'isnet');
  t.is(report.parameters, 'epsilon 0.01, alpha 3, beta 2');
  t.regex(String(daemonSc.DerivationDescription), /^LRP \(isnet, epsilon 0\.01, alpha 3, beta 2\) relevance map/);
  const contribution = (daemonSc.ContributingEquipmentSequence as NaturalDataset[])[0]?.ContributionDescription;
  t.regex(String(contribution), /LRP \(isnet, epsilon 0\.01, alpha 3, beta 2\)/);
  t.true(
    textValues(daemonSr.ContentSequence as NaturalDataset[]).some((text) =>
      text.includes('Heatmap: LRP (isnet, epsilon 0.01, alpha 3, beta 2)'),
    ),
    'the SR comment names the composite with alpha and beta',
  );
});
