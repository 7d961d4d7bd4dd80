import test from 'ava';
import { createCanvas, loadImage } from '@napi-rs/canvas';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConsoleRefusal } from '../../src/admin/console-types.js';
import { overlayPng } from '../../src/admin/overlay-png.js';
import { writeSecondaryCapture } from '../../src/reporting/secondary-capture.js';
import { prepareScEncoding } from '../../src/reporting/sc-encoding.js';
import { SC_ENCODINGS } from '../../src/reporting/sc-encoding-types.js';
import { makeImageFile } from '../helpers/dicom-factory.js';
import { CLASSIFICATION, CREATED_AT, EXPLANATION, MODEL } from '../reporting/reporting-fixtures.js';

// The console's overlay picture from a real SC written by src/reporting, decoded back by an independent PNG
// decoder (Skia, through @napi-rs/canvas).

for (const encoding of SC_ENCODINGS)
  test(`overlayPng: the SC written by the gateway in ${encoding} comes back as a PNG of the same size and colours`, async (t) => {
    await prepareScEncoding(encoding);
    const rows = 24;
    const columns = 40;
    const data = new Uint8Array(rows * columns * 3);
    // Left half red, right half blue, a green top row: orientation and channel order both show.
    for (let y = 0; y < rows; y++)
      for (let x = 0; x < columns; x++) {
        const i = (y * columns + x) * 3;
        if (y === 0) data.set([0, 200, 0], i);
        else data.set(x < columns / 2 ? [220, 10, 10] : [10, 10, 230], i);
      }
    const sc = writeSecondaryCapture({
      source: makeImageFile({ rows: 32, columns: 32 }).bytes,
      image: { rows, columns, data },
      model: MODEL,
      classification: CLASSIFICATION,
      explanation: EXPLANATION,
      revision: 0,
      createdAt: CREATED_AT,
      encoding: { encoding },
    });
    const dir = mkdtempSync(path.join(os.tmpdir(), 'overlay-png-'));
    const file = path.join(dir, 'sc.dcm');
    writeFileSync(file, sc.bytes);

    const png = await overlayPng(file);
    t.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    const image = await loadImage(png);
    t.is(image.width, columns);
    t.is(image.height, rows);
    const canvas = createCanvas(columns, rows);
    const context = canvas.getContext('2d');
    context.drawImage(image, 0, 0);
    const rgba = context.getImageData(0, 0, columns, rows).data;
    const at = (x: number, y: number) => [...rgba.subarray((y * columns + x) * 4, (y * columns + x) * 4 + 3)];
    // JPEG baseline is lossy: each sample within 12 of what was written (flat areas away from edges); others exact.
    const tolerance = encoding === 'jpeg-baseline' ? 12 : 0;
    const near = (got: number[], want: number[]) => got.every((v, k) => Math.abs(v - (want[k] ?? 0)) <= tolerance);
    t.true(near(at(5, 0), [0, 200, 0]), `${at(5, 0)}`);
    t.true(near(at(3, 10), [220, 10, 10]), `${at(3, 10)}`);
    t.true(near(at(columns - 1, rows - 1), [10, 10, 230]), `${at(columns - 1, rows - 1)}`);
  });

test('overlayPng: a file gone after retention is a 404 that says so; a file that is not our SC is a 409', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'overlay-png-'));
  const gone = await t.throwsAsync(overlayPng(path.join(dir, 'gone.dcm')), { instanceOf: ConsoleRefusal });
  t.is(gone?.status, 404);
  t.regex(gone?.message ?? '', /retention/);
  const grey = path.join(dir, 'grey.dcm');
  writeFileSync(grey, makeImageFile({ rows: 16, columns: 16 }).bytes);
  const notOurs = await t.throwsAsync(overlayPng(grey), { instanceOf: ConsoleRefusal });
  t.is(notOurs?.status, 409);
  t.regex(notOurs?.message ?? '', /not 8-bit RGB/);
  const junk = path.join(dir, 'junk.dcm');
  writeFileSync(junk, 'not dicom at all');
  t.is((await t.throwsAsync(overlayPng(junk), { instanceOf: ConsoleRefusal }))?.status, 409);
});
