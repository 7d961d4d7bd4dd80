// Specification: an explanation that is not finite (LRP_NOT_FINITE) fails its own image, never draws an overlay
// without a heatmap: in the daemon's per-image step, in a batch with healthy images, and in `render`.
import test from 'ava';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { analyseImages } from '../../src/analysis/analyse-images.js';
import { processImages } from '../../src/analysis/image-work.js';
import type { InferenceEngine } from '../../src/engines/engine.js';
import { assertFiniteExplanations } from '../../src/engines/finite-explanations.js';
import { createTfjsEngine } from '../../src/engines/tfjs-engine.js';
import { GatewayError } from '../../src/errors.js';
import { preprocess } from '../../src/imaging/preprocess.js';
import { loadImage } from '../../src/imaging/read-image.js';
import { writeImageFile } from '../helpers/dicom-factory.js';
import { runCli } from '../helpers/gateway-process.js';
import { tinyModelDir } from '../helpers/tiny-densenet.js';
import { nanModelDir } from '../engines/nan-model.js';

const sum = (values: Float32Array) => values.reduce((a, b) => a + b, 0);

/**
 * The real TF.js engine, except that the map of one image (known by its preprocessed input) gets a NaN: what an
 * engine makes of an image whose explanation breaks down, with the engine's own check applied.
 */
function poisoning(engine: InferenceEngine, poisoned: number): InferenceEngine {
  return {
    info: engine.info,
    manifest: engine.manifest,
    lrpOptions: engine.lrpOptions,
    classify: (inputs) => engine.classify(inputs),
    dispose: () => engine.dispose(),
    async explain(inputs, target) {
      const explanations = await engine.explain(inputs, target);
      inputs.forEach((input, i) => {
        if (Math.abs(sum(input) - poisoned) < 1e-3) for (const e of explanations[i] ?? []) e.relevance[7] = Number.NaN;
      });
      return assertFiniteExplanations(explanations);
    },
  };
}

function request(images: Array<{ sopInstanceUid: string; path: string }>) {
  return {
    images,
    outputs: ['sc', 'sr'] as Array<'sc' | 'sr'>,
    revision: 0,
    createdAt: new Date(0).toISOString(),
    outDir: mkdtempSync(path.join(os.tmpdir(), 'not-finite-out-')),
    target: 'predicted' as const,
    usageNotice: 'NOT FOR DIAGNOSTIC USE',
  };
}

test.serial(
  'in a batch, only the image whose map is not finite fails, with LRP_NOT_FINITE; the others are written',
  async (t) => {
    const engine = await createTfjsEngine({
      modelDir: tinyModelDir(),
      backend: 'cpu',
      allowSoftwareGpu: false,
      lrp: {},
    });
    t.teardown(() => engine.dispose());
    const dir = mkdtempSync(path.join(os.tmpdir(), 'not-finite-'));
    const files = await Promise.all([1, 2, 3].map((seed) => writeImageFile(dir, { seed })));
    const bad = files[1];
    if (bad === undefined) return t.fail();
    const poisoned = sum(preprocess(await loadImage(readFileSync(bad.path)), engine.manifest.preprocessing).data);
    const analysed = await analyseImages(
      poisoning(engine, poisoned),
      files.map((f) => ({ id: f.sopInstanceUid, path: f.path })),
      { kind: 'explain', target: 'predicted' },
    );
    t.deepEqual(
      analysed.map((r) => r.kind),
      ['analysed', 'failed', 'analysed'],
    );
    const failed = analysed[1];
    if (failed?.kind !== 'failed') return t.fail();
    t.is(failed.stage, 'explain');
    t.is((failed.error as GatewayError).code, 'LRP_NOT_FINITE');

    const results = await processImages(
      poisoning(engine, poisoned),
      request(files.map((f) => ({ sopInstanceUid: f.sopInstanceUid, path: f.path }))),
    );
    t.deepEqual(
      results.map((r) => (r.kind === 'failed' ? r.code : r.kind)),
      ['written', 'LRP_NOT_FINITE', 'written'],
    );
  },
);

test.serial(
  'weights that make NaN: the daemon fails every image with LRP_NOT_FINITE and writes no object',
  async (t) => {
    const engine = await createTfjsEngine({
      modelDir: nanModelDir(),
      backend: 'cpu',
      allowSoftwareGpu: false,
      lrp: {},
    });
    t.teardown(() => engine.dispose());
    const dir = mkdtempSync(path.join(os.tmpdir(), 'not-finite-'));
    const file = await writeImageFile(dir, { seed: 4 });
    const [result] = await processImages(engine, request([{ sopInstanceUid: file.sopInstanceUid, path: file.path }]));
    t.like(result, { kind: 'failed', code: 'LRP_NOT_FINITE' });
  },
);

test('render exits non-zero with LRP_NOT_FINITE and writes no picture when the map is not finite', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'not-finite-render-'));
  const file = await writeImageFile(dir, { seed: 5 });
  const png = path.join(dir, 'overlay.png');
  const result = await runCli(['render', file.path, '--png', png, '--model', nanModelDir(), '--engine', 'tfjs']);
  t.not(result.code, 0);
  t.regex(result.stderr, /not finite.*no heatmap is made from it/);
  t.false(existsSync(png), 'no overlay without a heatmap');
});
