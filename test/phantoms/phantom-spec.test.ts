// Specification of how a dataset's phantoms are chosen: balanced classes, the requested fractions of lateral and
// non-chest images, images of a study sharing patient and class, an image independent of the dataset size, and
// options refused with a sentence that names the bad one.

import test from 'ava';
import { GatewayError } from '../../src/errors.js';
import { phantomSpecFor, type PhantomSetOptions, type PhantomSpec } from '../../src/phantoms/phantom-spec.js';

function specs(n: number, seed: number, options: PhantomSetOptions = {}): PhantomSpec[] {
  return Array.from({ length: n }, (_, i) => phantomSpecFor(i, seed, options));
}

function tally<T extends string>(values: readonly T[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const v of values) out[v] = (out[v] ?? 0) + 1;
  return out;
}

test('classes are balanced: any 3k frontal chests hold k of each class, in a shuffled order', (t) => {
  const all = specs(30, 4);
  t.deepEqual(tally(all.map((s) => s.className)), { normal: 10, pneumonia: 10, covid: 10 });
  const blocks = new Set<string>();
  for (let b = 0; b < 10; b++)
    blocks.add(
      all
        .slice(3 * b, 3 * b + 3)
        .map((s) => s.className)
        .join(','),
    );
  t.true(blocks.size > 1, 'each block of three is in its own order, not a fixed cycle');
  const two = specs(20, 4, { classes: ['covid', 'normal'] });
  t.deepEqual(tally(two.map((s) => s.className)), { covid: 10, normal: 10 });
});

test('an image does not depend on how many images the dataset has, and the seed changes it', (t) => {
  const spec = phantomSpecFor(17, 99, { size: 512 });
  t.deepEqual(specs(40, 99, { size: 512 })[17], spec);
  t.notDeepEqual(phantomSpecFor(17, 100, { size: 512 }), spec);
});

test('lateral and non-chest fractions give about that share of LL views and of HAND / SKULL images', (t) => {
  const all = specs(400, 12, { lateralFraction: 0.25, nonChestFraction: 0.2 });
  const lateral = all.filter((s) => s.view === 'LL').length / all.length;
  const nonChest = all.filter((s) => s.bodyPart !== 'CHEST').length / all.length;
  t.true(Math.abs(lateral - 0.25) < 0.07, `lateral ${lateral}`);
  t.true(Math.abs(nonChest - 0.2) < 0.07, `non-chest ${nonChest}`);
  t.true(all.filter((s) => s.bodyPart !== 'CHEST').every((s) => s.className === 'normal'));
  t.true(all.some((s) => s.bodyPart === 'HAND') && all.some((s) => s.bodyPart === 'SKULL'));
  t.true(
    specs(100, 12).every((s) => s.bodyPart === 'CHEST' && s.view !== 'LL'),
    'none by default',
  );
});

test('bit depth, photometric and view vary across a dataset', (t) => {
  const all = specs(200, 3);
  const bits = new Set(all.map((s) => s.bitsStored));
  t.deepEqual([...bits].sort(), [12, 13, 14, 15, 16]);
  t.true(all.some((s) => s.photometric === 'MONOCHROME1') && all.some((s) => s.photometric === 'MONOCHROME2'));
  t.true(all.some((s) => s.view === 'AP') && all.some((s) => s.view === 'PA'));
});

test('images of one study share the patient (anatomy and findings) and the class, not the image seed', (t) => {
  const all = specs(12, 8, { imagesPerStudy: 3 });
  for (let study = 0; study < 4; study++) {
    const group = all.filter((s) => s.studyIndex === study);
    t.is(group.length, 3);
    t.deepEqual(
      group.map((s) => s.indexInStudy),
      [0, 1, 2],
    );
    t.is(new Set(group.map((s) => s.patientSeed)).size, 1);
    t.is(new Set(group.map((s) => s.className)).size, 1);
    t.is(new Set(group.map((s) => s.seed)).size, 3);
  }
});

test('bad options are refused with PHANTOMS_OPTIONS naming the option', (t) => {
  const cases: Array<[PhantomSetOptions, RegExp]> = [
    [{ size: 8 }, /size must be an integer from 32/],
    [{ lateralFraction: 1.5 }, /lateral fraction must be a number from 0 to 1/],
    [{ lateralFraction: 0.6, nonChestFraction: 0.6 }, /must not exceed 1/],
    [{ classes: [] }, /at least one of normal, pneumonia, covid/],
    [{ classes: ['flu' as never] }, /unknown class 'flu'/],
    [{ imagesPerStudy: 0 }, /images per study/],
  ];
  for (const [options, message] of cases) {
    const error = t.throws(() => phantomSpecFor(0, 1, options), { instanceOf: GatewayError });
    t.is(error?.code, 'PHANTOMS_OPTIONS');
    t.regex(error?.message ?? '', message);
  }
  t.throws(() => phantomSpecFor(0, -1), { message: /seed must be an integer/ });
  t.throws(() => phantomSpecFor(-2, 1), { message: /index must be a non-negative integer/ });
});
