import test from 'ava';
import { GatewayError } from '../../src/errors.js';
import {
  renderOverlay,
  overlaySize,
  type OverlayInput,
  type RenderedOverlay,
} from '../../src/reporting/heatmap-overlay.js';
import type { BannerContent } from '../../src/reporting/banner.js';
import { meanRedMinusBlue, plantedRelevance } from './reporting-fixtures.js';

const BANNER: BannerContent = {
  predicted: 'COVID-19',
  probabilities: [
    { name: 'COVID-19', probability: 0.8712 },
    { name: 'pneumonia', probability: 0.1011 },
    { name: 'normal', probability: 0.0277 },
  ],
  explainedClass: 'COVID-19',
  modelName: 'densenet201-cxr',
  modelVersion: '1.2.0',
  method: 'LRP (isnet)',
  usageNotice: 'NOT FOR DIAGNOSTIC USE',
  intendedUse: 'Research use only.',
};

const ROWS = 200;
const COLUMNS = 160;
const SIZE = 64;
const BLOB = { row: 60, column: 50, sigma: 10 };

function input(values?: Float32Array): OverlayInput {
  const planted = plantedRelevance(ROWS, COLUMNS, SIZE, 'pad', BLOB);
  return {
    display: { pixels: new Float32Array(ROWS * COLUMNS).fill(0.5), rows: ROWS, columns: COLUMNS },
    relevance: { values: values ?? planted.values, size: SIZE, placement: planted.placement },
    banner: BANNER,
  };
}

function overlayPanel(r: RenderedOverlay) {
  const panel = r.panels.find((p) => p.kind === 'overlay');
  if (!panel) throw new Error('no overlay panel');
  return panel;
}

const distance = (y: number, x: number) => Math.hypot(y - BLOB.row, x - BLOB.column);

test('red lies over the planted positive blob, blue where relevance is negative', (t) => {
  const r = renderOverlay(input());
  const panel = overlayPanel(r);
  const inside = meanRedMinusBlue(r.image.data, r.image.columns, panel, (y, x) => distance(y, x) < BLOB.sigma);
  const outside = meanRedMinusBlue(r.image.data, r.image.columns, panel, (y, x) => distance(y, x) > 3 * BLOB.sigma);
  t.log(
    `red - blue: inside ${inside.mean.toFixed(1)} (${inside.count} px), outside ${outside.mean.toFixed(1)} (${outside.count} px)`,
  );
  t.true(inside.mean > 100);
  t.true(outside.mean < -20, 'negative relevance shows blue');
  // The red mass is centred on the blob.
  let sy = 0;
  let sx = 0;
  let mass = 0;
  for (let y = 0; y < panel.rows; y++)
    for (let x = 0; x < panel.columns; x++) {
      const o = ((panel.top + y) * r.image.columns + x) * 3;
      const w = Math.max(0, (r.image.data[o] ?? 0) - (r.image.data[o + 2] ?? 0));
      sy += w * y;
      sx += w * x;
      mass += w;
    }
  t.log(`red centroid (${(sy / mass).toFixed(1)}, ${(sx / mass).toFixed(1)}), blob at (${BLOB.row}, ${BLOB.column})`);
  t.true(Math.hypot(sy / mass - BLOB.row, sx / mass - BLOB.column) < 3);
});

test('a single extreme outlier does not wash out the map (99.5th percentile scale)', (t) => {
  const values = Float32Array.from(input().relevance.values);
  const p = input().relevance.placement;
  values[(p.top + p.rows - 1) * SIZE + p.left + p.columns - 1] = 1e6;
  const r = renderOverlay(input(values));
  const inside = meanRedMinusBlue(
    r.image.data,
    r.image.columns,
    overlayPanel(r),
    (y, x) => distance(y, x) < BLOB.sigma,
  );
  t.log(`scale ${r.scale.toFixed(3)}; red - blue inside the blob ${inside.mean.toFixed(1)}`);
  t.true(r.scale < 2, 'scale from the 99.5th percentile, not the 1e6 maximum');
  t.true(inside.mean > 100);
});

test('the banner carries text: it differs from the same banner drawn without text, the picture does not', (t) => {
  const withText = renderOverlay(input());
  const without = renderOverlay(input(), { drawText: false });
  const { columns } = withText.image;
  const bannerStart = withText.banner.top * columns * 3;
  const bannerEnd = (withText.banner.top + withText.banner.rows) * columns * 3;
  t.deepEqual(
    withText.image.data.subarray(0, bannerStart),
    without.image.data.subarray(0, bannerStart),
    'picture unchanged',
  );
  let differing = 0;
  for (let i = bannerStart; i < bannerEnd; i += 3) if (withText.image.data[i] !== without.image.data[i]) differing++;
  t.log(`${differing} banner pixels carry text`);
  t.true(differing > 500);
});

test('the banner is a strip of its own, above or below the picture, never over it', (t) => {
  const bottom = renderOverlay(input(), { bannerPosition: 'bottom' });
  const top = renderOverlay(input(), { bannerPosition: 'top' });
  t.is(bottom.image.rows, ROWS + bottom.banner.rows);
  t.is(overlayPanel(bottom).top, 0);
  t.is(bottom.banner.top, ROWS);
  t.is(top.banner.top, 0);
  t.is(overlayPanel(top).top, top.banner.rows);
  const stride = COLUMNS * 3;
  t.deepEqual(
    top.image.data.subarray(top.banner.rows * stride),
    bottom.image.data.subarray(0, ROWS * stride),
    'the same picture rows, only moved',
  );
});

test('side by side: twice as wide, the plain X-ray left and the overlay right', (t) => {
  const single = renderOverlay(input());
  const pair = renderOverlay(input(), { layout: 'side-by-side' });
  t.is(pair.image.columns, 2 * single.image.columns);
  t.deepEqual(
    pair.panels.map((p) => [p.kind, p.left]),
    [
      ['original', 0],
      ['overlay', COLUMNS],
    ],
  );
  let grey = true;
  let same = true;
  for (let y = 0; y < ROWS; y++)
    for (let x = 0; x < COLUMNS; x++) {
      const left = (y * 2 * COLUMNS + x) * 3;
      const right = left + COLUMNS * 3;
      const single0 = (y * COLUMNS + x) * 3;
      const d = pair.image.data;
      if (d[left] !== 128 || d[left + 1] !== 128 || d[left + 2] !== 128) grey = false;
      for (let k = 0; k < 3; k++) if (d[right + k] !== single.image.data[single0 + k]) same = false;
    }
  t.true(grey, 'left panel is the grey image without colour');
  t.true(same, 'right panel is the overlay');
});

test('an all-zero map colours nothing', (t) => {
  const r = renderOverlay(input(new Float32Array(SIZE * SIZE)));
  t.is(r.scale, 0);
  const picture = r.image.data.subarray(0, ROWS * COLUMNS * 3);
  t.true(picture.every((v) => v === 128));
});

test('the output is capped at maxEdge per panel (2048 by default), never enlarged', (t) => {
  const rows = 2500;
  const columns = 2048;
  const planted = plantedRelevance(rows, columns, 224, 'pad', { row: 900, column: 700, sigma: 120 });
  const big: OverlayInput = {
    display: { pixels: new Float32Array(rows * columns).fill(0.4), rows, columns },
    relevance: { values: planted.values, size: 224, placement: planted.placement },
    banner: BANNER,
  };
  const r = renderOverlay(big);
  t.deepEqual([overlayPanel(r).rows, overlayPanel(r).columns], [2048, 1678]);
  t.deepEqual(overlaySize(rows, columns), { rows: r.image.rows, columns: r.image.columns });
  const small = renderOverlay(input(), { maxEdge: 100 });
  t.deepEqual([overlayPanel(small).rows, overlayPanel(small).columns], [100, 80]);
  const unscaled = renderOverlay(input(), { maxEdge: 4096 });
  t.deepEqual([overlayPanel(unscaled).rows, overlayPanel(unscaled).columns], [ROWS, COLUMNS]);
});

test('bad options and inputs are refused with a GatewayError that says what is wrong', (t) => {
  const options = t.throws(() => renderOverlay(input(), { maxEdge: 10 }), { instanceOf: GatewayError });
  t.is((options as GatewayError).code, 'RENDER_OPTIONS');
  const wrongSize = t.throws(
    () => renderOverlay({ ...input(), relevance: { ...input().relevance, values: new Float32Array(10) } }),
    {
      instanceOf: GatewayError,
    },
  );
  t.regex(wrongSize?.message ?? '', /model input's size/);
});
