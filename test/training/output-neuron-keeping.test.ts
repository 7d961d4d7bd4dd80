import test from 'ava';
import { keepOutputNeurons } from '../../src/training/output-neuron-keeping.js';
import { NIH_LABELS } from '../../src/training/nih-chestxray14.js';
import { SeededRandom } from '../../src/training/random.js';

const FEATURES = 5;
const previous = {
  classes: [...NIH_LABELS],
  weight: { shape: [14, FEATURES], data: Float32Array.from({ length: 14 * FEATURES }, (_, i) => i + 1) },
  bias: { shape: [14], data: Float32Array.from({ length: 14 }, (_, i) => -(i + 1)) },
};
const rows = (data: Float32Array, i: number) => Array.from(data.subarray(i * FEATURES, (i + 1) * FEATURES));

test('copies the Pneumonia neuron (row and bias) to pneumonia and starts the other classes fresh', (t) => {
  const head = keepOutputNeurons(previous, ['COVID-19', 'pneumonia', 'normal'], new SeededRandom(1));
  t.deepEqual(head.kept, [{ target: 'pneumonia', targetIndex: 1, source: 'Pneumonia', sourceIndex: 6 }]);
  t.deepEqual(rows(head.weight.data, 1), rows(previous.weight.data, 6));
  t.is(head.bias.data[1], -7);
  for (const fresh of [0, 2]) {
    t.is(head.bias.data[fresh], 0);
    // torchvision's nn.Linear init: uniform in +-1/sqrt(features), far from the previous rows' values.
    t.true(rows(head.weight.data, fresh).every((v) => Math.abs(v) <= 1 / Math.sqrt(FEATURES)));
  }
});

test('fresh rows do not depend on which rows are kept, and keep=false keeps none', (t) => {
  const kept = keepOutputNeurons(previous, ['COVID-19', 'pneumonia', 'normal'], new SeededRandom(9));
  const fresh = keepOutputNeurons(previous, ['COVID-19', 'pneumonia', 'normal'], new SeededRandom(9), { keep: false });
  t.deepEqual(fresh.kept, []);
  t.deepEqual(rows(fresh.weight.data, 0), rows(kept.weight.data, 0));
  t.notDeepEqual(rows(fresh.weight.data, 1), rows(kept.weight.data, 1));
});

test("matches names ignoring case and '_' vs ' ', and follows an explicit map", (t) => {
  const head = keepOutputNeurons(previous, ['pleural thickening', 'COVID-19'], new SeededRandom(2), {
    keep: true,
    map: { 'COVID-19': 'Infiltration' },
  });
  t.deepEqual(
    head.kept.map((k) => [k.target, k.source]),
    [
      ['pleural thickening', 'Pleural_Thickening'],
      ['COVID-19', 'Infiltration'],
    ],
  );
  t.throws(
    () => keepOutputNeurons(previous, ['COVID-19'], new SeededRandom(2), { keep: true, map: { 'COVID-19': 'Flu' } }),
    { message: /does not have/ },
  );
});
