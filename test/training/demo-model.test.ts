import test from 'ava';
import * as tf from '@tensorflow/tfjs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { selectBackend } from '../../src/inference/backend.js';
import { BatchRunner } from '../../src/analysis/batch-runner.js';
import { loadModel, type LoadedModel } from '../../src/inference/model-loader.js';
import { readImage } from '../../src/imaging/read-image.js';
import { preprocess } from '../../src/imaging/preprocess.js';
import { resizeToSquare } from '../../src/imaging/resize.js';
import { DenseNetLrp } from '../../src/lrp/densenet-lrp.js';
import { phantomIdentity, phantomPart10 } from '../../src/phantoms/phantom-dicom.js';
import { phantomSpecFor, type PhantomSetOptions } from '../../src/phantoms/phantom-spec.js';
import { renderPhantom } from '../../src/phantoms/render-phantom.js';

// The committed demo model against phantoms it has never seen: a seed that tools/make-demo-model.sh does not
// use, through the same path as the gateway (DICOM bytes -> readImage -> preprocess -> DenseNet / LRP).
const DEMO_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../models/demo');
const UNSEEN_SEED = 424242;
const SETS: Array<{ count: number; options: PhantomSetOptions }> = [
  { count: 30, options: { size: 256 } },
  { count: 30, options: { size: 384, aspect: 'portrait' } },
];
const PHANTOM_TO_CLASS = { covid: 'COVID-19', pneumonia: 'pneumonia', normal: 'normal' } as const;

interface Case {
  input: Float32Array;
  truth: string;
  /** The finding mask in model input geometry (same resize as the image), 1 inside. */
  mask: Uint8Array | undefined;
}

function cases(model: LoadedModel): Case[] {
  const p = model.manifest.preprocessing;
  const out: Case[] = [];
  let offset = 0;
  for (const set of SETS) {
    for (let i = 0; i < set.count; i += 1) {
      const spec = phantomSpecFor(offset + i, UNSEEN_SEED, set.options);
      const image = renderPhantom(spec);
      const input = preprocess(readImage(phantomPart10(image, phantomIdentity(spec, UNSEEN_SEED), 'explicit')), p).data;
      let mask: Uint8Array | undefined;
      if (image.className !== 'normal') {
        const resized = resizeToSquare(
          Float32Array.from(image.mask),
          image.rows,
          image.columns,
          p.inputSize,
          p.resize,
          0,
        );
        mask = Uint8Array.from(resized, (v) => (v >= 0.5 ? 1 : 0));
      }
      out.push({ input, truth: PHANTOM_TO_CLASS[image.className], mask });
    }
    offset += set.count;
  }
  return out;
}

/**
 * Positive relevance smoothed lightly, then the position of its maximum. The smoothing is a Gaussian with
 * sigma = 1/64 of the input edge (2 pixels at 128): it merges pixel-level speckle of the first layer's rule
 * into the structure it sits on, far finer than a finding (the standard pointing game instead allows a
 * 15-pixel tolerance at 224, 1/15 of the edge).
 */
function smoothedPeak(relevance: Float32Array, size: number): number {
  const sigma = size / 64;
  const radius = Math.ceil(3 * sigma);
  const kernel = Array.from({ length: 2 * radius + 1 }, (_, i) => Math.exp(-((i - radius) ** 2) / (2 * sigma * sigma)));
  const clamp = (v: number) => Math.min(size - 1, Math.max(0, v));
  const rows = new Float32Array(size * size);
  for (let y = 0; y < size; y += 1) {
    for (let x = 0; x < size; x += 1) {
      let v = 0;
      for (let k = -radius; k <= radius; k += 1)
        v += (kernel[k + radius] ?? 0) * Math.max(0, relevance[y * size + clamp(x + k)] ?? 0);
      rows[y * size + x] = v;
    }
  }
  let best = -1;
  let index = 0;
  for (let y = 0; y < size; y += 1) {
    for (let x = 0; x < size; x += 1) {
      let v = 0;
      for (let k = -radius; k <= radius; k += 1) v += (kernel[k + radius] ?? 0) * (rows[clamp(y + k) * size + x] ?? 0);
      if (v > best) {
        best = v;
        index = y * size + x;
      }
    }
  }
  return index;
}

test('the demo model classifies unseen phantoms (>= 95%) and its LRP maps point into the findings (>= 80%)', async (t) => {
  await selectBackend('wasm');
  const model = loadModel(DEMO_DIR);
  t.regex(model.manifest.intendedUse, /not for diagnostic use/i);
  const all = cases(model);
  const classes = model.manifest.classes;
  const runner = new BatchRunner(model);
  const results = await runner.classifyTensors(all.map((c) => c.input));

  const confusion = classes.map(() => classes.map(() => 0));
  let correct = 0;
  results.forEach((r, i) => {
    const truth = classes.indexOf(all[i]?.truth ?? '');
    const predicted = classes.indexOf(r.predicted);
    const row = confusion[truth];
    if (row) row[predicted] = (row[predicted] ?? 0) + 1;
    if (truth === predicted) correct += 1;
  });
  const accuracy = correct / all.length;
  const width = Math.max(...classes.map((c) => c.length)) + 2;
  t.log(`confusion (rows: truth, columns: predicted ${classes.join(' / ')}):`);
  classes.forEach((c, k) =>
    t.log(`  ${c.padEnd(width)}${(confusion[k] ?? []).map((n) => String(n).padStart(5)).join('')}`),
  );
  t.log(`accuracy ${(accuracy * 100).toFixed(1)}% (${correct}/${all.length})`);

  // Pointing game over the images with a finding, explaining the true class (as the game is defined) with the
  // default composite.
  const size = model.manifest.preprocessing.inputSize;
  const lrp = new DenseNetLrp(model.network, classes, model.manifest.preprocessing);
  const withFinding = all.filter((c) => c.mask !== undefined);
  let hits = 0;
  let chance = 0;
  const started = performance.now();
  for (const c of withFinding) {
    const x = tf.tensor4d(c.input, [1, size, size, 3]);
    const [explanation] = (await lrp.explain(x, c.truth))[0] ?? [];
    x.dispose();
    const mask = c.mask ?? new Uint8Array();
    if (explanation && mask[smoothedPeak(explanation.relevance, size)] === 1) hits += 1;
    chance += mask.reduce((a, b) => a + b, 0) / mask.length;
  }
  const perImage = (performance.now() - started) / withFinding.length;
  const pointing = hits / withFinding.length;
  t.log(
    `pointing game: ${(pointing * 100).toFixed(1)}% (${hits}/${withFinding.length}) of pneumonia and COVID phantoms; a random point: ${((chance / withFinding.length) * 100).toFixed(1)}%`,
  );
  t.log(`LRP (isnet) of one image: ${perImage.toFixed(0)} ms`);
  lrp.dispose();
  model.network.dispose();
  t.true(accuracy >= 0.95, `accuracy ${accuracy}`);
  t.true(pointing >= 0.8, `pointing ${pointing}`);
});
