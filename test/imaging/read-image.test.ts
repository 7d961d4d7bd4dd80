// Specification of readImage(): stored samples become modality values. Bits outside Bits Stored are masked off
// (the high bits here hold garbage on purpose), signed samples are sign-extended, Rescale Slope/Intercept or the
// Modality LUT applies, padding is flagged, and the file's VOI is picked (VOI LUT Sequence before Window).

import test from 'ava';
import type { DicomJson } from 'dcmjs';
import { readImage } from '../../src/imaging/read-image.js';
import { makeImageFile } from '../helpers/dicom-factory.js';
import { editFile, remove, set, setPixels } from './pixel-fixtures.js';

const ROWS = 16;
const COLUMNS = 24;
const N = ROWS * COLUMNS;

/** A known signed 12-bit pattern covering the whole range, -2048 .. 2047. */
function signed12(i: number): number {
  return ((i * 173) % 4096) - 2048;
}

function base(opts: { bitsAllocated?: 8 | 16; transferSyntax?: 'explicit' | 'implicit' } = {}): Buffer {
  return makeImageFile({
    rows: ROWS,
    columns: COLUMNS,
    bitsAllocated: opts.bitsAllocated ?? 16,
    transferSyntax: opts.transferSyntax ?? 'explicit',
  }).bytes;
}

function withPixels(
  bytes: Buffer,
  samples: Uint8Array | Uint16Array,
  edit: (ds: DicomJson) => void = () => undefined,
): Buffer {
  return editFile(bytes, (_meta, ds) => {
    setPixels(ds, samples);
    edit(ds);
  });
}

test('signed 12-bit samples in 16 bits: garbage in the high bits is masked off and the sign extended', (t) => {
  const raw = new Uint16Array(N);
  for (let i = 0; i < N; i++) raw[i] = (signed12(i) & 0xfff) | (((i * 7) & 0xf) << 12);
  const file = withPixels(base(), raw, (ds) => {
    set(ds, '00280103', 'US', [1]);
  });
  const image = readImage(file);
  t.deepEqual(
    Array.from(image.values),
    Array.from({ length: N }, (_, i) => signed12(i)),
  );
});

test('unsigned 12-bit samples: garbage in the high bits is masked off', (t) => {
  const raw = new Uint16Array(N);
  for (let i = 0; i < N; i++) raw[i] = ((i * 173) % 4096) | 0xf000;
  const image = readImage(withPixels(base(), raw));
  t.deepEqual(
    Array.from(image.values),
    Array.from({ length: N }, (_, i) => (i * 173) % 4096),
  );
});

test('High Bit 15 with Bits Stored 12: the stored bits sit at the top, the low bits are ignored', (t) => {
  const raw = new Uint16Array(N);
  for (let i = 0; i < N; i++) raw[i] = (((i * 173) % 4096) << 4) | (i & 0xf);
  const image = readImage(withPixels(base(), raw, (ds) => set(ds, '00280102', 'US', [15])));
  t.deepEqual(
    Array.from(image.values),
    Array.from({ length: N }, (_, i) => (i * 173) % 4096),
  );
});

test('Rescale Slope and Intercept give modality values (signed, fractional slope)', (t) => {
  const raw = new Uint16Array(N);
  for (let i = 0; i < N; i++) raw[i] = signed12(i) & 0xffff;
  const file = withPixels(base(), raw, (ds) => {
    set(ds, '00280101', 'US', [16]);
    set(ds, '00280102', 'US', [15]);
    set(ds, '00280103', 'US', [1]);
    set(ds, '00281053', 'DS', ['0.5']);
    set(ds, '00281052', 'DS', ['-100.25']);
  });
  const image = readImage(file);
  for (let i = 0; i < N; i++) {
    if (image.values[i] !== Math.fround(signed12(i) * 0.5 - 100.25)) {
      t.fail(`pixel ${i}: ${image.values[i]} != ${signed12(i) * 0.5 - 100.25}`);
      return;
    }
  }
  t.pass();
});

test('a Modality LUT Sequence replaces rescale (US and OW LUT Data, clamped at both ends)', (t) => {
  for (const vr of ['US', 'OW'] as const) {
    const raw = new Uint16Array(N);
    for (let i = 0; i < N; i++) raw[i] = (i * 11) % 1100;
    // Entries for stored values 100 .. 999: output 3 x stored; below 100 -> first entry, above 999 -> last.
    const entries = Array.from({ length: 900 }, (_, k) => 3 * (100 + k));
    const data = vr === 'US' ? entries : [new Uint16Array(entries).buffer];
    const file = withPixels(base(), raw, (ds) => {
      remove(ds, '00281053', '00281052');
      set(ds, '00283000', 'SQ', [
        {
          '00283002': { vr: 'US', Value: [900, 100, 16] },
          '00283006': { vr, Value: data },
          '00283004': { vr: 'LO', Value: ['US'] },
        },
      ]);
    });
    const image = readImage(file);
    t.deepEqual(
      Array.from(image.values),
      Array.from(raw, (s) => 3 * Math.min(999, Math.max(100, s))),
      vr,
    );
  }
});

test('Pixel Padding Value (and Range Limit) flags padding pixels; signed values written as SS or US agree', (t) => {
  const raw = new Uint16Array(N);
  for (let i = 0; i < N; i++) raw[i] = i % 5 === 0 ? 0 : 100 + (i % 50);
  const single = readImage(withPixels(base(), raw, (ds) => set(ds, '00280120', 'US', [0])));
  t.deepEqual(
    Array.from(single.padding ?? []),
    Array.from(raw, (s) => (s === 0 ? 1 : 0)),
  );

  const ranged = readImage(
    withPixels(base(), raw, (ds) => {
      set(ds, '00280120', 'US', [100]);
      set(ds, '00280121', 'US', [109]);
    }),
  );
  t.deepEqual(
    Array.from(ranged.padding ?? []),
    Array.from(raw, (s) => (s >= 100 && s <= 109 ? 1 : 0)),
  );

  t.is(readImage(withPixels(base(), raw)).padding, undefined, 'no padding attribute, no mask');

  // Signed 12-bit image padded with -2000: the writer may say SS -2000 or (seen in the wild) US 63536.
  const signedRaw = new Uint16Array(N);
  for (let i = 0; i < N; i++) signedRaw[i] = (i % 3 === 0 ? -2000 : signed12(i) === -2000 ? 0 : signed12(i)) & 0xfff;
  const expected = Array.from({ length: N }, (_, i) => (i % 3 === 0 ? 1 : 0));
  for (const [vr, value] of [
    ['SS', -2000],
    ['US', 63536],
  ] as const) {
    const image = readImage(
      withPixels(base(), signedRaw, (ds) => {
        set(ds, '00280103', 'US', [1]);
        set(ds, '00280120', vr, [value]);
      }),
    );
    t.deepEqual(Array.from(image.padding ?? []), expected, vr);
    t.is(image.values[0], -2000);
  }
});

test('8-bit images read as their stored bytes', (t) => {
  const raw = Uint8Array.from({ length: N }, (_, i) => (i * 7) & 0xff);
  const image = readImage(withPixels(base({ bitsAllocated: 8 }), raw));
  t.deepEqual(Array.from(image.values), Array.from(raw));
});

test('32-bit native images (unsigned and signed) are read', (t) => {
  const words = new Uint32Array(N);
  for (let i = 0; i < N; i++) words[i] = i * 100_003;
  const file = editFile(base(), (_meta, ds) => {
    ds['7FE00010'] = { vr: 'OW', Value: [words.buffer] };
    set(ds, '00280100', 'US', [32]);
    set(ds, '00280101', 'US', [32]);
    set(ds, '00280102', 'US', [31]);
    remove(ds, '00281050', '00281051');
  });
  t.deepEqual(
    Array.from(readImage(file).values),
    Array.from(words, (w) => Math.fround(w)),
  );
  const signed = editFile(file, (_meta, ds) => {
    const neg = new Int32Array(N).map((_, i) => -i * 1000);
    ds['7FE00010'] = { vr: 'OW', Value: [neg.buffer] };
    set(ds, '00280103', 'US', [1]);
  });
  t.deepEqual(
    Array.from(readImage(signed).values),
    Array.from({ length: N }, (_, i) => (i === 0 ? 0 : -i * 1000)),
  );
});

test('implicit VR files read the same as explicit ones', (t) => {
  const raw = new Uint16Array(N);
  for (let i = 0; i < N; i++) raw[i] = (signed12(i) & 0xfff) | 0xa000;
  const edit = (ds: DicomJson): void => {
    set(ds, '00280103', 'US', [1]);
    set(ds, '00280120', 'SS', [-2048]);
  };
  const explicit = readImage(withPixels(base(), raw, edit));
  const implicit = readImage(withPixels(base({ transferSyntax: 'implicit' }), raw, edit));
  t.is(implicit.transferSyntaxUid, '1.2.840.10008.1.2');
  t.deepEqual(Array.from(implicit.values), Array.from(explicit.values));
  t.deepEqual(Array.from(implicit.padding ?? []), Array.from(explicit.padding ?? []));
  t.true((explicit.padding ?? []).some((p) => p === 1));
});

test('VOI: the first Window Center/Width and its function; the VOI LUT Sequence wins over the window', (t) => {
  const bytes = base();
  const windowed = readImage(
    editFile(bytes, (_m, ds) => {
      set(ds, '00281050', 'DS', [1000, 2000]);
      set(ds, '00281051', 'DS', [500, 800]);
      set(ds, '00281056', 'CS', ['SIGMOID']);
    }),
  );
  t.deepEqual(windowed.voi, { kind: 'window', center: 1000, width: 500, fn: 'SIGMOID' });

  const withLut = readImage(
    editFile(bytes, (_m, ds) => {
      set(ds, '00283010', 'SQ', [
        { '00283002': { vr: 'US', Value: [4, 10, 8] }, '00283006': { vr: 'US', Value: [0, 50, 200, 255] } },
      ]);
    }),
  );
  t.is(withLut.voi?.kind, 'lut');
  if (withLut.voi?.kind === 'lut') {
    t.is(withLut.voi.lut.firstMapped, 10);
    t.deepEqual(Array.from(withLut.voi.lut.data), [0, 50, 200, 255]);
  }

  const badWidth = readImage(editFile(bytes, (_m, ds) => set(ds, '00281051', 'DS', [0])));
  t.is(badWidth.voi, undefined, 'a zero width is no window (the percentile window takes over)');
  t.is(readImage(editFile(bytes, (_m, ds) => remove(ds, '00281050', '00281051'))).voi, undefined);
});

test('identity and photometric come through', (t) => {
  const file = makeImageFile({ rows: ROWS, columns: COLUMNS, photometric: 'MONOCHROME1', sopInstanceUid: '2.25.42' });
  const image = readImage(file.bytes);
  t.is(image.photometric, 'MONOCHROME1');
  t.is(image.sopInstanceUid, '2.25.42');
  t.is(image.lossy, false);
});
