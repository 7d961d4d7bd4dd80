import test from 'ava';
import { parseCsv } from '../../src/training/csv.js';
import type { LabelledDataset } from '../../src/training/labelled-image.js';
import { rocAuc, taskMetrics } from '../../src/training/metrics.js';
import { SeededRandom } from '../../src/training/random.js';
import { splitByGroup } from '../../src/training/stage-trainer.js';

function dataset(groups: Array<[string, number]>): LabelledDataset {
  return {
    kind: 'single-label',
    classes: ['a', 'b', 'c'],
    description: 'test',
    images: groups.map(([group, cls]) => {
      const target = new Float32Array(3);
      target[cls] = 1;
      return { source: group, group, target, decode: () => Promise.reject(new Error('not needed')) };
    }),
  };
}

test('the validation split keeps each patient on one side and holds out every class', (t) => {
  const images: Array<[string, number]> = [];
  for (let p = 0; p < 30; p += 1) for (let k = 0; k < 2; k += 1) images.push([`patient${p}`, p % 3]);
  const d = dataset(images);
  const split = splitByGroup(d, 0.2, new SeededRandom(4));
  t.is(split.train.length + split.validation.length, 60);
  const side = new Map<string, string>();
  for (const [name, list] of [
    ['train', split.train],
    ['validation', split.validation],
  ] as const) {
    for (const i of list) {
      const g = d.images[i]?.group ?? '';
      t.not(side.get(g), name === 'train' ? 'validation' : 'train', `${g} on both sides`);
      side.set(g, name);
    }
  }
  const heldClasses = new Set(split.validation.map((i) => d.images[i]?.target.indexOf(1)));
  t.deepEqual([...heldClasses].sort(), [0, 1, 2]);
  t.is(split.validation.length, 12);
  t.deepEqual(splitByGroup(d, 0.2, new SeededRandom(4)), split, 'same seed, same split');
});

test('metrics: confusion matrix and per-class recall/precision; AUC by ranks with ties counted half', (t) => {
  const p = Float32Array.from([0.8, 0.1, 0.1, 0.2, 0.7, 0.1, 0.6, 0.3, 0.1, 0.1, 0.1, 0.8]);
  const y = Float32Array.from([1, 0, 0, 0, 1, 0, 0, 1, 0, 0, 0, 1]);
  const m = taskMetrics('single-label', ['a', 'b', 'c'], p, y, 2);
  t.deepEqual(m.confusion, [
    [1, 0, 0],
    [1, 1, 0],
    [0, 0, 1],
  ]);
  t.is(m.accuracy, 0.75);
  t.is(m.loss, 0.5);
  t.is(m.perClass['b']?.accuracy, 0.5);
  t.is(m.perClass['a']?.precision, 0.5);
  t.is(
    rocAuc(
      [
        [0.1, 0],
        [0.4, 1],
        [0.35, 0],
        [0.8, 1],
      ],
      2,
    ),
    1,
  );
  t.is(
    rocAuc(
      [
        [0.5, 0],
        [0.5, 1],
      ],
      1,
    ),
    0.5,
  );
  t.is(rocAuc([[0.5, 1]], 1), undefined);
});

test('CSV: quoted fields with commas, doubled quotes and CRLF', (t) => {
  const table = parseCsv('\uFEFFfile,class\r\n"a,b.dcm","say ""hi"""\r\nc.dcm,normal\r\n');
  t.deepEqual(table.header, ['file', 'class']);
  t.deepEqual(table.rows, [
    { file: 'a,b.dcm', class: 'say "hi"' },
    { file: 'c.dcm', class: 'normal' },
  ]);
});
