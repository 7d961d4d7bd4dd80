// Specification of the phantom DICOM files and dataset folders: every kind of phantom (normal / pneumonia / COVID-19,
// PA / AP / lateral, hand and skull, MONOCHROME1 / 2, native and compressed syntaxes) is a DX image dciodvfy accepts
// without errors or warnings; compressed files decode, through the gateway's own reader, to exactly the rendered
// pixels; labels.csv describes the files it lists; the same seed writes the same bytes.

import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createCanvas, loadImage as loadPng } from '@napi-rs/canvas';
import test from 'ava';
import { GatewayError } from '../../src/errors.js';
import { loadImage } from '../../src/imaging/read-image.js';
import { LABEL_COLUMNS, writePhantomDataset } from '../../src/phantoms/dataset-writer.js';
import { initFrameEncoders, PHANTOM_SYNTAXES, type PhantomSyntax } from '../../src/phantoms/frame-encoder.js';
import { phantomIdentity, phantomPart10 } from '../../src/phantoms/phantom-dicom.js';
import { phantomSpecFor, type PhantomSpec } from '../../src/phantoms/phantom-spec.js';
import { renderPhantom } from '../../src/phantoms/render-phantom.js';
import { dciodvfy, parseFile } from '../helpers/dicom-factory.js';

let workDir = '';
test.before(async () => {
  workDir = await mkdtemp(path.join(tmpdir(), 'phantoms-'));
  await initFrameEncoders();
});
test.after.always(async () => {
  if (workDir) await rm(workDir, { recursive: true, force: true });
});

interface Case {
  name: string;
  spec: Partial<PhantomSpec>;
  syntax: PhantomSyntax;
}

const CASES: Case[] = [
  {
    name: 'normal PA MONOCHROME2 explicit',
    spec: { className: 'normal', view: 'PA', photometric: 'MONOCHROME2', bitsStored: 12 },
    syntax: 'explicit',
  },
  {
    name: 'pneumonia AP MONOCHROME1 implicit + markers',
    spec: { className: 'pneumonia', view: 'AP', photometric: 'MONOCHROME1', bitsStored: 16, textMarkers: true },
    syntax: 'implicit',
  },
  {
    name: 'covid PA 14-bit JPEG lossless',
    spec: { className: 'covid', view: 'PA', photometric: 'MONOCHROME2', bitsStored: 14 },
    syntax: 'jpeg-lossless',
  },
  {
    name: 'covid lateral JPEG-LS',
    spec: { className: 'covid', view: 'LL', photometric: 'MONOCHROME2', bitsStored: 13 },
    syntax: 'jpeg-ls-lossless',
  },
  {
    name: 'pneumonia PA MONOCHROME1 JPEG 2000',
    spec: { className: 'pneumonia', view: 'PA', photometric: 'MONOCHROME1', bitsStored: 15 },
    syntax: 'jpeg2000-lossless',
  },
  {
    name: 'hand RLE',
    spec: {
      className: 'normal',
      bodyPart: 'HAND',
      view: 'PA',
      photometric: 'MONOCHROME2',
      bitsStored: 12,
      textMarkers: true,
    },
    syntax: 'rle',
  },
  {
    name: 'skull explicit',
    spec: { className: 'normal', bodyPart: 'SKULL', view: 'AP', photometric: 'MONOCHROME1', bitsStored: 14 },
    syntax: 'explicit',
  },
];

function caseSpec(c: Case, index: number): PhantomSpec {
  return { ...phantomSpecFor(index, 31, { size: 96 }), ...c.spec };
}

test('every kind of phantom file passes dciodvfy with zero errors and zero warnings', async (t) => {
  for (const [index, c] of CASES.entries()) {
    const spec = caseSpec(c, index);
    const image = renderPhantom(spec);
    const id = phantomIdentity(spec, 31);
    const file = path.join(workDir, `case-${index}.dcm`);
    await writeFile(file, phantomPart10(image, id, c.syntax));
    const { errors, warnings, output } = await dciodvfy(file);
    t.deepEqual(errors, [], `${c.name}:\n${output}`);
    t.deepEqual(warnings, [], `${c.name}:\n${output}`);
    const { meta, dataset } = parseFile(await readFile(file));
    t.is(meta.TransferSyntaxUID, PHANTOM_SYNTAXES[c.syntax]);
    t.like(dataset, {
      SOPClassUID: '1.2.840.10008.5.1.4.1.1.1.1',
      Modality: 'DX',
      ViewPosition: spec.view,
      BodyPartExamined: spec.bodyPart,
      PhotometricInterpretation: spec.photometric,
      PresentationLUTShape: spec.photometric === 'MONOCHROME1' ? 'INVERSE' : 'IDENTITY',
      BurnedInAnnotation: image.textMarkers.length > 0 ? 'YES' : 'NO',
      SOPInstanceUID: id.sopInstanceUid,
      StudyInstanceUID: id.studyInstanceUid,
      PatientID: id.patientId,
    });
    t.regex(
      String(
        (dataset.PatientName as Array<{ Alphabetic?: string }> | undefined)?.[0]?.Alphabetic ?? dataset.PatientName,
      ),
      /^PHANTOM\^\d{4}$/,
    );
    t.is(Number(dataset.WindowCenter), image.window.center);
    t.is(Number(dataset.WindowWidth), image.window.width);
  }
});

test('compressed phantoms decode, through the gateway reader, to exactly the rendered pixels and window', async (t) => {
  for (const [index, c] of CASES.entries()) {
    const spec = caseSpec(c, index);
    const image = renderPhantom(spec);
    const decoded = await loadImage(phantomPart10(image, phantomIdentity(spec, 31), c.syntax));
    t.is(decoded.rows, image.rows);
    t.is(decoded.columns, image.columns);
    t.is(decoded.photometric, image.photometric);
    t.false(decoded.lossy);
    t.true(
      decoded.values.every((v, i) => v === image.pixels[i]),
      `${c.name}: pixels differ`,
    );
    t.like(decoded.voi, {
      kind: 'window',
      center: image.window.center,
      width: image.window.width,
      fn: image.window.fn,
    });
  }
});

/** A minimal RFC 4180 reader for the labels file. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let cell = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i] ?? '';
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') {
        cell += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else cell += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ',') {
      row.push(cell);
      cell = '';
    } else if (ch === '\n') {
      row.push(cell);
      rows.push(row);
      row = [];
      cell = '';
    } else cell += ch;
  }
  return rows;
}

async function readMask(file: string): Promise<{ width: number; height: number; values: number[] }> {
  const png = await loadPng(await readFile(file));
  const canvas = createCanvas(png.width, png.height);
  const ctx = canvas.getContext('2d');
  ctx.drawImage(png, 0, 0);
  const rgba = ctx.getImageData(0, 0, png.width, png.height).data;
  const values: number[] = [];
  for (let i = 0; i < rgba.length; i += 4) values.push(rgba[i] ?? 0);
  return { width: png.width, height: png.height, values };
}

test('writes a dataset folder whose labels.csv matches the DICOM files and masks it lists', async (t) => {
  const dir = path.join(workDir, 'dataset');
  const summary = await writePhantomDataset({
    dir,
    count: 10,
    seed: 5,
    size: 96,
    aspect: 'portrait',
    lateralFraction: 0.2,
    nonChestFraction: 0.2,
    textMarkers: true,
    syntax: 'mixed',
    previews: true,
  });
  t.is(summary.count, 10);
  t.is(summary.labelsFile, path.join(dir, 'labels.csv'));
  const [header, ...rows] = parseCsv(await readFile(summary.labelsFile, 'utf8'));
  t.deepEqual(header, [...LABEL_COLUMNS]);
  t.is(rows.length, 10);
  t.deepEqual((await readdir(path.join(dir, 'images'))).length, 10);
  const col = (row: string[], name: (typeof LABEL_COLUMNS)[number]): string => row[LABEL_COLUMNS.indexOf(name)] ?? '';
  for (const row of rows) {
    const file = path.join(dir, col(row, 'file'));
    const { meta, dataset } = parseFile(await readFile(file));
    t.is(dataset.SOPInstanceUID, col(row, 'sopInstanceUid'));
    t.is(dataset.StudyInstanceUID, col(row, 'studyInstanceUid'));
    t.is(dataset.ViewPosition, col(row, 'view'));
    t.is(dataset.BodyPartExamined, col(row, 'bodyPart'));
    t.is(dataset.PatientID, col(row, 'patientId'));
    t.is(dataset.PhotometricInterpretation, col(row, 'photometric'));
    t.is(dataset.BitsStored, Number(col(row, 'bitsStored')));
    t.is(dataset.Rows, Number(col(row, 'rows')));
    t.is(dataset.Columns, Number(col(row, 'columns')));
    t.is(meta.TransferSyntaxUID, col(row, 'transferSyntax'));
    t.is(dataset.BurnedInAnnotation, col(row, 'textMarkers') === '' ? 'NO' : 'YES');
    t.true(['normal', 'pneumonia', 'covid'].includes(col(row, 'class')));
    const mask = await readMask(path.join(dir, col(row, 'mask')));
    t.is(mask.width, Number(col(row, 'columns')));
    t.is(mask.height, Number(col(row, 'rows')));
    t.true(mask.values.every((v) => v === 0 || v === 255));
    const area = mask.values.filter((v) => v === 255).length;
    if (col(row, 'class') === 'normal') t.is(area, 0, `${col(row, 'file')}: a normal image has an empty mask`);
    else t.true(area > 0, `${col(row, 'file')}: a ${col(row, 'class')} image has a mask`);
    t.is(col(row, 'finding') === '', col(row, 'class') === 'normal');
    // The seed and index columns reproduce the image.
    const spec = phantomSpecFor(Number(col(row, 'index')), 5, {
      size: 96,
      aspect: 'portrait',
      lateralFraction: 0.2,
      nonChestFraction: 0.2,
      textMarkers: true,
    });
    t.is(String(spec.seed), col(row, 'seed'));
    t.is(col(row, 'datasetSeed'), '5');
    t.true(existsSync(path.join(dir, 'previews', path.basename(file, '.dcm') + '.png')));
    const { errors, output } = await dciodvfy(file);
    t.deepEqual(errors, [], output);
  }
  t.true(
    rows.some((r) => col(r, 'view') === 'LL') || rows.some((r) => col(r, 'bodyPart') !== 'CHEST'),
    'the fractions took effect',
  );
});

test('the same seed writes the same bytes; another seed writes different ones', async (t) => {
  const write = async (name: string, seed: number): Promise<string> => {
    const dir = path.join(workDir, name);
    await writePhantomDataset({
      dir,
      count: 4,
      seed,
      size: 64,
      textMarkers: true,
      syntax: 'mixed',
      lateralFraction: 0.25,
    });
    return dir;
  };
  const [a, b, c] = [await write('same-a', 77), await write('same-b', 77), await write('other', 78)];
  for (const sub of ['images', 'masks']) {
    const names = await readdir(path.join(a, sub));
    t.is(names.length, 4);
    for (const name of names) {
      const bytes = await readFile(path.join(a, sub, name));
      t.deepEqual(await readFile(path.join(b, sub, name)), bytes, `${sub}/${name} is the same`);
      if (sub === 'images')
        t.notDeepEqual(await readFile(path.join(c, sub, name)), bytes, `${sub}/${name} differs with another seed`);
    }
  }
  t.is(await readFile(path.join(b, 'labels.csv'), 'utf8'), await readFile(path.join(a, 'labels.csv'), 'utf8'));
  t.not(await readFile(path.join(c, 'labels.csv'), 'utf8'), await readFile(path.join(a, 'labels.csv'), 'utf8'));
});

test('refuses a folder that is not empty and leaves it alone', async (t) => {
  const dir = path.join(workDir, 'busy');
  await writePhantomDataset({ dir: path.join(dir, 'x'), count: 1, seed: 1, size: 48 });
  const error = await t.throwsAsync(writePhantomDataset({ dir, count: 2, seed: 1, size: 48 }), {
    instanceOf: GatewayError,
  });
  t.is(error?.code, 'PHANTOMS_OUT_NOT_EMPTY');
  t.deepEqual(await readdir(dir), ['x']);
});
