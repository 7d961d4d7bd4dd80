import test from 'ava';
import { formatModelCard } from '../../src/cli/model-card.js';
import { checkModelDirectory } from '../../src/inference/model-loader.js';
import { tinyModelDir } from '../helpers/tiny-densenet.js';

test('the model card says how stored values are scaled', (t) => {
  const byWindow = formatModelCard(checkModelDirectory(tinyModelDir()));
  t.regex(byWindow, /resize pad, window dicom \(percentiles 0\.5-99\.5\)/);
  const dir = tinyModelDir({
    preprocessing: { ...checkModelDirectory(tinyModelDir()).manifest.preprocessing, scaling: 'bitsStored' },
  });
  const byBits = formatModelCard(checkModelDirectory(dir));
  t.regex(byBits, /resize pad, scaling bitsStored \(v \/ \(2\^BitsStored - 1\), no window\)/);
  t.notRegex(byBits, /window dicom/);
});
