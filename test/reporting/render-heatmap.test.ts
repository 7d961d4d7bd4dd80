import test from 'ava';
import { makeImageFile } from '../helpers/dicom-factory.js';
import { renderHeatmap, type HeatmapModel } from '../../src/reporting/render-heatmap.js';
import {
  CLASSIFICATION,
  EXPLANATION,
  HEATMAP_MODEL,
  meanRedMinusBlue,
  plantedRelevance,
} from './reporting-fixtures.js';

const SIZE = 64;
const model = (resize: 'pad' | 'stretch'): HeatmapModel => ({
  ...HEATMAP_MODEL,
  preprocessing: { inputSize: SIZE, resize, window: 'dicom', percentiles: [0.5, 99.5] },
});

test('from DICOM bytes: red over the planted blob at its place in the source, for pad and stretch models', async (t) => {
  const rows = 300;
  const columns = 220;
  const blob = { row: 110, column: 70, sigma: 14 };
  const source = makeImageFile({ rows, columns, sopClass: 'cr' });
  for (const resize of ['pad', 'stretch'] as const) {
    const planted = plantedRelevance(rows, columns, SIZE, resize, blob);
    const r = await renderHeatmap(
      source.bytes,
      CLASSIFICATION,
      { ...EXPLANATION, relevance: planted.values },
      model(resize),
    );
    const panel = r.panels[0];
    if (!panel) return t.fail();
    t.deepEqual([panel.rows, panel.columns], [rows, columns]);
    const d = (y: number, x: number) => Math.hypot(y - blob.row, x - blob.column);
    const inside = meanRedMinusBlue(r.image.data, r.image.columns, panel, (y, x) => d(y, x) < blob.sigma);
    const outside = meanRedMinusBlue(r.image.data, r.image.columns, panel, (y, x) => d(y, x) > 3 * blob.sigma);
    t.log(`${resize}: red - blue inside ${inside.mean.toFixed(1)}, outside ${outside.mean.toFixed(1)}`);
    t.true(inside.mean > 80, resize);
    t.true(outside.mean < -15, resize);
  }
});

test('MONOCHROME1 and MONOCHROME2 versions of one image give the same picture (bright = dense in both)', async (t) => {
  const relevance = plantedRelevance(128, 128, SIZE, 'pad', { row: 40, column: 40, sigma: 8 }).values;
  const render = async (photometric: 'MONOCHROME1' | 'MONOCHROME2') =>
    renderHeatmap(
      makeImageFile({ rows: 128, columns: 128, photometric, seed: 3 }).bytes,
      CLASSIFICATION,
      { ...EXPLANATION, relevance },
      model('pad'),
    );
  const [m1, m2] = await Promise.all([render('MONOCHROME1'), render('MONOCHROME2')]);
  let maxDiff = 0;
  for (let i = 0; i < 128 * 128 * 3; i++)
    maxDiff = Math.max(maxDiff, Math.abs((m1.image.data[i] ?? 0) - (m2.image.data[i] ?? 0)));
  t.log(`largest difference ${maxDiff} grey levels`);
  t.true(maxDiff <= 2);
  // And the phantom's dark lungs are dark: the top-left corner of the body is brighter than the lung centre.
  const grey = (y: number, x: number) => m2.image.data[(y * 128 + x) * 3 + 1] ?? 0;
  t.true(grey(61, 90) < grey(120, 64), 'lung darker than the lower body');
});
