import test from 'ava';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { selectBackend } from '../../src/inference/backend.js';
import { preprocessingSchema } from '../../src/imaging/preprocessing-spec.js';
import { readImage } from '../../src/imaging/read-image.js';
import { preprocess } from '../../src/imaging/preprocess.js';
import { ImageBank } from '../../src/training/image-bank.js';
import { readLabelsCsvDataset, labelsCsvSourceSchema } from '../../src/training/labels-csv-dataset.js';
import { writeImageFile } from '../helpers/dicom-factory.js';

const CLASSES = ['COVID-19', 'pneumonia', 'normal'];

async function folder(labels: string[]): Promise<{ dir: string; files: string[] }> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'labels-csv-'));
  const files: string[] = [];
  for (const [i, label] of labels.entries()) {
    const f = await writeImageFile(dir, {
      rows: 96,
      columns: 80,
      seed: i + 1,
      photometric: i % 2 ? 'MONOCHROME1' : 'MONOCHROME2',
    });
    files.push(f.path);
    labels[i] = `${path.basename(f.path)},${label}`;
  }
  writeFileSync(path.join(dir, 'labels.csv'), `file,class\n${labels.join('\n')}\n`);
  return { dir, files };
}

test.before(async () => {
  await selectBackend('wasm');
});

test('training batches of DICOM files are bit for bit what inference preprocessing gives', async (t) => {
  const { dir, files } = await folder(['covid', 'pneumonia', 'normal']);
  const dataset = readLabelsCsvDataset(
    labelsCsvSourceSchema.parse({ format: 'labels-csv', dir, labelMap: { covid: 'COVID-19' } }),
    'single-label',
    CLASSES,
  );
  t.deepEqual(
    dataset.images.map((i) => Array.from(i.target)),
    [
      [1, 0, 0],
      [0, 1, 0],
      [0, 0, 1],
    ],
  );
  const spec = preprocessingSchema.parse({ inputSize: 64 });
  const bank = new ImageBank(dataset.images, spec, 1 << 20);
  const { x, y } = await bank.batch([0, 1, 2]);
  t.deepEqual(x.shape, [3, 64, 64, 3]);
  t.deepEqual(Array.from(await y.data()), [1, 0, 0, 0, 1, 0, 0, 0, 1]);
  const batch = await x.data();
  files.forEach((file, i) => {
    const reference = preprocess(readImage(readFileSync(file)), spec).data;
    const ours = batch.subarray(i * reference.length, (i + 1) * reference.length);
    t.true(
      reference.every((v, k) => v === ours[k]),
      file,
    );
  });
  x.dispose();
  y.dispose();
});

test('an unknown label is refused with the way to map it', async (t) => {
  const { dir } = await folder(['covid', 'flu']);
  t.throws(
    () =>
      readLabelsCsvDataset(
        labelsCsvSourceSchema.parse({ format: 'labels-csv', dir, labelMap: { covid: 'COVID-19' } }),
        'single-label',
        CLASSES,
      ),
    {
      message: /label 'flu' is not one of COVID-19, pneumonia, normal; map it with labelMap/,
    },
  );
  const skipped = readLabelsCsvDataset(
    labelsCsvSourceSchema.parse({ format: 'labels-csv', dir, labelMap: { covid: 'COVID-19' }, skipLabels: ['flu'] }),
    'single-label',
    CLASSES,
  );
  t.is(skipped.images.length, 1);
});
