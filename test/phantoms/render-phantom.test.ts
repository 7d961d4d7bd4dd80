// Specification of the phantom renderer (no DICOM): deterministic per seed, ground-truth masks that mean what they
// say (empty for normal; one lung and one region for pneumonia; both lungs, peripheral and mostly basal for COVID-19),
// findings that make the lung denser where the mask is, burned-in text away from the lungs, MONOCHROME1 that
// displays like MONOCHROME2, and anatomy other than frontal chests for routing tests.

import test from 'ava';
import { phantomSpecFor, type PhantomSpec } from '../../src/phantoms/phantom-spec.js';
import { displayPixels } from '../../src/phantoms/preview.js';
import { renderPhantom, type PhantomImage } from '../../src/phantoms/render-phantom.js';

const SIZE = 128;

/** The first `count` specs of dataset `seed` with class `className` (frontal views only). */
function specsOf(className: PhantomSpec['className'], count: number, seed = 21, size = SIZE): PhantomSpec[] {
  const out: PhantomSpec[] = [];
  for (let i = 0; out.length < count; i++) {
    const spec = phantomSpecFor(i, seed, { size });
    if (spec.className === className) out.push(spec);
  }
  return out;
}

function count(mask: Uint8Array): number {
  let n = 0;
  for (const m of mask) n += m === 0 ? 0 : 1;
  return n;
}

/** Sizes of the 4-connected regions of a mask, largest first. */
function regions(mask: Uint8Array, columns: number, rows: number): number[] {
  const seen = new Uint8Array(mask.length);
  const sizes: number[] = [];
  for (let start = 0; start < mask.length; start++) {
    if (mask[start] === 0 || seen[start] === 1) continue;
    let size = 0;
    const stack = [start];
    seen[start] = 1;
    while (stack.length > 0) {
      const i = stack.pop() ?? 0;
      size++;
      const x = i % columns;
      const y = (i - x) / columns;
      for (const [nx, ny] of [
        [x + 1, y],
        [x - 1, y],
        [x, y + 1],
        [x, y - 1],
      ] as const) {
        if (nx < 0 || ny < 0 || nx >= columns || ny >= rows) continue;
        const j = ny * columns + nx;
        if (mask[j] !== 0 && seen[j] === 0) {
          seen[j] = 1;
          stack.push(j);
        }
      }
    }
    sizes.push(size);
  }
  return sizes.sort((a, b) => b - a);
}

/** Mean column of the pixels where `select(i)` holds. */
function meanColumn(image: PhantomImage, select: (i: number) => boolean): number {
  let sum = 0;
  let n = 0;
  for (let i = 0; i < image.lungs.length; i++) {
    if (!select(i)) continue;
    sum += i % image.columns;
    n++;
  }
  return sum / n;
}

test('the same spec renders the same pixels and masks; another seed renders different ones', (t) => {
  const spec = phantomSpecFor(4, 7, { size: SIZE, textMarkers: true });
  const a = renderPhantom(spec);
  const b = renderPhantom(spec);
  t.deepEqual(a.pixels, b.pixels);
  t.deepEqual(a.mask, b.mask);
  t.deepEqual(a.textMarkers, b.textMarkers);
  const other = renderPhantom(phantomSpecFor(4, 8, { size: SIZE, textMarkers: true }));
  t.notDeepEqual(other.pixels, a.pixels);
});

test('renders at any size and aspect, with stored values inside Bits Stored', (t) => {
  for (const [size, aspect] of [
    [48, 'square'],
    [200, 'portrait'],
    [333, 'portrait'],
  ] as const) {
    const spec = phantomSpecFor(1, 3, { size, aspect });
    const image = renderPhantom(spec);
    t.is(image.rows, size);
    t.true(image.columns <= size && image.columns >= Math.floor(size * 0.8) - 2, `columns ${image.columns}`);
    t.is(image.pixels.length, image.rows * image.columns);
    t.is(image.mask.length, image.pixels.length);
    const max = 2 ** image.bitsStored - 1;
    t.true(image.pixels.every((v) => v <= max));
    t.true(count(image.lungs) > 0.1 * image.pixels.length, 'lungs are drawn at every size');
  }
});

test('a normal phantom has an all-zero mask', (t) => {
  for (const spec of specsOf('normal', 3)) {
    const image = renderPhantom(spec);
    t.is(count(image.mask), 0);
    t.deepEqual(image.findings, []);
  }
});

test('pneumonia: the mask is one region (mostly) in one lung, inside the lung fields', (t) => {
  const lungsHit = new Set<number>();
  for (const spec of specsOf('pneumonia', 6)) {
    const image = renderPhantom(spec);
    const n = count(image.mask);
    t.true(n > 0.01 * image.pixels.length, `mask of ${n} pixels is big enough to see at ${SIZE} x ${SIZE}`);
    const labels = new Set<number>();
    for (let i = 0; i < image.mask.length; i++) if (image.mask[i]) labels.add(image.lungs[i] ?? 0);
    t.is(labels.size, 1, 'one lung');
    t.false(labels.has(0), 'inside the lung fields');
    lungsHit.add([...labels][0] ?? 0);
    const [largest = 0] = regions(image.mask, image.columns, image.rows);
    t.true(largest >= 0.9 * n, `largest region ${largest} of ${n} pixels`);
    t.is(image.findings.length, 1);
    t.is(image.findings[0]?.kind, 'consolidation');
  }
  t.true(lungsHit.size >= 1);
});

test('COVID-19: opacities in both lungs, inside them, towards their outer edges and mostly in the lower halves', (t) => {
  let lower = 0;
  let upper = 0;
  for (const spec of specsOf('covid', 6)) {
    const image = renderPhantom(spec);
    for (const lung of [1, 2]) {
      const inLung = (i: number): boolean => image.lungs[i] === lung;
      const masked = (i: number): boolean => image.mask[i] === 1 && inLung(i);
      t.true(count(image.mask.map((m, i) => (m && inLung(i) ? 1 : 0))) > 0, `lung ${lung} has an opacity`);
      // Peripheral: the opacities sit further from the midline than the lung's own centre.
      const midline = image.columns / 2;
      t.true(
        Math.abs(meanColumn(image, masked) - midline) > Math.abs(meanColumn(image, inLung) - midline),
        `lung ${lung}: peripheral`,
      );
    }
    let rowSum = 0;
    let lungPixels = 0;
    for (let i = 0; i < image.lungs.length; i++) {
      if (image.lungs[i] === 0) continue;
      t.not(image.lungs[i], 0);
      rowSum += Math.floor(i / image.columns);
      lungPixels++;
    }
    const centreRow = rowSum / lungPixels;
    for (let i = 0; i < image.mask.length; i++) {
      if (!image.mask[i]) continue;
      t.not(image.lungs[i], 0, 'mask inside the lungs');
      if (Math.floor(i / image.columns) > centreRow) lower++;
      else upper++;
    }
    t.true(regions(image.mask, image.columns, image.rows).length >= 2, 'patchy: several separate opacities');
  }
  t.true(lower > 1.5 * upper, `lower ${lower} vs upper ${upper} mask pixels`);
});

test('a finding raises the displayed density inside its mask against the same phantom rendered without it', (t) => {
  for (const spec of [...specsOf('pneumonia', 3), ...specsOf('covid', 3)]) {
    const withFinding = renderPhantom(spec);
    const without = renderPhantom({ ...spec, className: 'normal' });
    t.is(count(without.mask), 0);
    const a = displayPixels(withFinding);
    const b = displayPixels(without);
    // The lungs' bounding box, plus the pixels their outline partly covers (it holds the retrocardiac lung too,
    // which a finding may also fill).
    let x0 = Infinity;
    let x1 = -Infinity;
    let y0 = Infinity;
    let y1 = -Infinity;
    withFinding.lungs.forEach((label, i) => {
      if (label === 0) return;
      const x = i % withFinding.columns;
      const y = Math.floor(i / withFinding.columns);
      [x0, x1, y0, y1] = [Math.min(x0, x), Math.max(x1, x), Math.min(y0, y), Math.max(y1, y)];
    });
    let inside = 0;
    let n = 0;
    let changedFar = 0;
    for (let i = 0; i < a.length; i++) {
      const x = i % withFinding.columns;
      const y = Math.floor(i / withFinding.columns);
      if (withFinding.mask[i]) {
        inside += (a[i] ?? 0) - (b[i] ?? 0);
        n++;
      } else if ((x < x0 - 1 || x > x1 + 1 || y < y0 - 1 || y > y1 + 1) && (a[i] ?? 0) !== (b[i] ?? 0)) {
        changedFar++;
      }
    }
    // Well above the noise (about 0.01 at this size) and visible on a display: 5% of the grey scale.
    t.true(inside / n > 0.05, `${spec.className}: mean display change inside the mask ${(inside / n).toFixed(3)}`);
    t.is(changedFar, 0, 'nothing changes away from the lungs');
  }
});

test('a consolidation is denser than ground-glass opacities on average', (t) => {
  const meanChange = (className: 'pneumonia' | 'covid'): number => {
    let total = 0;
    const specs = specsOf(className, 4, 5);
    for (const spec of specs) {
      const a = displayPixels(renderPhantom(spec));
      const withFinding = renderPhantom(spec);
      const b = displayPixels(renderPhantom({ ...spec, className: 'normal' }));
      let sum = 0;
      let n = 0;
      for (let i = 0; i < a.length; i++) {
        if (!withFinding.mask[i]) continue;
        sum += (a[i] ?? 0) - (b[i] ?? 0);
        n++;
      }
      total += sum / n;
    }
    return total / specs.length;
  };
  t.true(meanChange('pneumonia') > meanChange('covid'));
});

test('MONOCHROME1 displays like MONOCHROME2: the stored values are inverted and the window with them', (t) => {
  const spec = phantomSpecFor(2, 9, { size: SIZE });
  const mono2 = renderPhantom({ ...spec, photometric: 'MONOCHROME2' });
  const mono1 = renderPhantom({ ...spec, photometric: 'MONOCHROME1' });
  const max = 2 ** spec.bitsStored - 1;
  t.true(mono1.pixels.every((v, i) => v === max - (mono2.pixels[i] ?? 0)));
  const d1 = displayPixels(mono1);
  const d2 = displayPixels(mono2);
  let worst = 0;
  for (let i = 0; i < d1.length; i++) worst = Math.max(worst, Math.abs((d1[i] ?? 0) - (d2[i] ?? 0)));
  t.true(worst < 2 / mono2.window.width + 1e-6, `largest display difference ${worst}`);
});

test('text markers are burned in outside the lungs, in white, and only when asked for', (t) => {
  let drawn = 0;
  for (let index = 0; index < 6; index++) {
    const spec = phantomSpecFor(index, 13, { size: 256, textMarkers: true });
    const marked = renderPhantom(spec);
    const plain = renderPhantom({ ...spec, textMarkers: false });
    t.deepEqual(plain.textMarkers, []);
    t.is(count(plain.textMask), 0);
    t.true(marked.textMarkers.length >= 1, 'at least the side marker');
    t.true(['L', 'R'].includes(marked.textMarkers[0] ?? ''));
    const a = displayPixels(marked);
    const b = displayPixels(plain);
    let brighter = 0;
    let textPixels = 0;
    for (let i = 0; i < a.length; i++) {
      if (!marked.textMask[i]) continue;
      textPixels++;
      t.is(marked.lungs[i], 0, 'no text over a lung');
      if ((a[i] ?? 0) > (b[i] ?? 0) + 0.1) brighter++;
    }
    t.true(textPixels > 20, `${textPixels} text pixels`);
    t.true(brighter > 0.8 * textPixels, `${brighter} of ${textPixels} text pixels are clearly brighter`);
    drawn += marked.textMarkers.length;
  }
  t.true(drawn >= 6);
});

test('lateral views, hands and skulls: the right view and body part, no frontal lungs, findings only on chests', (t) => {
  const options = { size: SIZE, lateralFraction: 0.4, nonChestFraction: 0.4 };
  const seen = new Set<string>();
  for (let index = 0; index < 30; index++) {
    const spec = phantomSpecFor(index, 17, options);
    const image = renderPhantom(spec);
    seen.add(`${image.bodyPart} ${image.view}`);
    if (image.bodyPart !== 'CHEST') {
      t.is(image.className, 'normal');
      t.is(count(image.mask), 0);
      t.is(count(image.lungs), 0);
    } else if (image.view === 'LL') {
      t.true(
        image.lungs.every((l) => l === 0 || l === 3),
        'one superimposed lung field',
      );
      t.true(count(image.lungs) > 0);
      if (image.className !== 'normal') t.true(count(image.mask) > 0);
    }
  }
  for (const kind of ['HAND PA', 'SKULL AP', 'CHEST LL', 'CHEST PA']) t.true(seen.has(kind), `${kind} among 30 images`);
});

test('a hand looks nothing like a chest: most of the image is background air', (t) => {
  const spec: PhantomSpec = {
    ...phantomSpecFor(0, 1, { size: SIZE }),
    bodyPart: 'HAND',
    view: 'PA',
    className: 'normal',
  };
  const hand = displayPixels(renderPhantom(spec));
  const chest = displayPixels(renderPhantom({ ...spec, bodyPart: 'CHEST' }));
  const dark = (d: Float32Array): number => d.filter((v) => v < 0.15).length / d.length;
  t.true(dark(hand) > dark(chest) + 0.2, `dark pixels: hand ${dark(hand)}, chest ${dark(chest)}`);
});
