// Specification of src/analysis/image-work.ts (the function the inference worker runs) and of the analysis path
// it shares with `render` and `classify` (src/analysis/analyse-images.ts), in-process on the cpu backend.
import test from 'ava';
import type { NaturalDataset } from 'dcmjs';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { analyseImages } from '../../src/analysis/analyse-images.js';
import { processImages, type ImageWorkRequest } from '../../src/analysis/image-work.js';
import { writtenImageResultSchema } from '../../src/analysis/image-work-schema.js';
import { studyObjects } from '../../src/pipeline/study-objects.js';
import { outputModelInfo } from '../../src/reporting/report-inputs.js';
import { GatewayError } from '../../src/errors.js';
import type { InferenceEngine } from '../../src/engines/engine.js';
import { createTfjsEngine } from '../../src/engines/tfjs-engine.js';
import { COMPOSITE_NAMES, type CompositeName } from '../../src/lrp/composites.js';
import { makeImageFile, writeImageFile } from '../helpers/dicom-factory.js';
import { maxAbsDiff, tinyModelDir } from '../helpers/tiny-densenet.js';
import { readBack } from '../reporting/reporting-fixtures.js';

const modelDir = tinyModelDir();
const tfjsEngine = (composite: CompositeName = 'isnet') =>
  createTfjsEngine({ modelDir, backend: 'cpu', allowSoftwareGpu: false, lrp: { composite } });
let engine: InferenceEngine;
test.before(async () => {
  engine = await tfjsEngine();
});
test.after.always(() => engine.dispose());

function request(images: ImageWorkRequest['images']): ImageWorkRequest {
  return {
    images,
    outputs: ['sc', 'sr'],
    revision: 0,
    createdAt: new Date(Date.UTC(2026, 0, 2, 3, 4, 5)).toISOString(),
    outDir: mkdtempSync(path.join(os.tmpdir(), 'image-work-out-')),
    target: 'predicted',
    usageNotice: 'NOT FOR DIAGNOSTIC USE',
  };
}

function textValues(items: readonly NaturalDataset[] | undefined): string[] {
  return (items ?? []).flatMap((item) => [
    ...(typeof item.TextValue === 'string' ? [item.TextValue] : []),
    ...textValues(item.ContentSequence as NaturalDataset[] | undefined),
  ]);
}

/** Every rule's parameters as each composite applies them (composites.ts), with the default values. */
const EXPECTED: Record<CompositeName, string> = {
  isnet: 'epsilon 0.01, alpha 2, beta 1',
  epsilon: 'epsilon 0.01',
  'epsilon-plus-flat': 'epsilon 0.01, alpha 1, beta 0',
  'epsilon-gamma-box': 'epsilon 0.01, gamma 0.25',
};

for (const composite of COMPOSITE_NAMES) {
  test.serial(
    `the SC the worker writes, and the study's SR written from its stored result, name every rule's parameters of the ${composite} composite`,
    async (t) => {
      const dir = mkdtempSync(path.join(os.tmpdir(), 'image-work-'));
      const source = await writeImageFile(dir, { rows: 120, columns: 100, seed: 5 });
      const withComposite = await tfjsEngine(composite);
      t.teardown(() => withComposite.dispose());
      const [result] = await processImages(
        withComposite,
        request([{ sopInstanceUid: source.sopInstanceUid, path: source.path, instanceNumber: 3 }]),
      );
      if (result?.kind !== 'written') return t.fail(JSON.stringify(result));
      // The worker writes the heatmap only: the SR covers the whole study and is written once, by the pipeline.
      t.deepEqual(
        result.outputs.map((o) => o.kind),
        ['sc'],
      );
      t.deepEqual(result.model, { modelUid: withComposite.manifest.modelUid, version: withComposite.manifest.version });
      const sc = readBack(readFileSync(result.outputs.find((o) => o.kind === 'sc')?.path ?? ''));
      const method = `LRP (${composite}, ${EXPECTED[composite]})`;
      t.true(String(sc.DerivationDescription).startsWith(`${method} relevance map`), String(sc.DerivationDescription));
      t.true(
        String((sc.ContributingEquipmentSequence as NaturalDataset[])[0]?.ContributionDescription).includes(method),
      );
      t.is(sc.InstanceNumber, 3, "the image's place in the job");
      t.is(sc.SeriesNumber, 9001);
      // What the pipeline stores (JSON) is enough for the SR to name the same method.
      const stored = writtenImageResultSchema.parse(JSON.parse(JSON.stringify(result)));
      const { sr } = await studyObjects({
        results: [stored],
        sourcePaths: new Map([[source.sopInstanceUid, source.path]]),
        model: outputModelInfo(withComposite.manifest),
        revision: 0,
        superseded: undefined,
        withSr: true,
        createdAt: new Date(Date.UTC(2026, 0, 2, 3, 4, 5)),
        usageNotice: 'NOT FOR DIAGNOSTIC USE',
      });
      if (sr === undefined) return t.fail('no SR');
      t.true(
        textValues(readBack(sr.bytes).ContentSequence as NaturalDataset[]).some((text) =>
          text.includes(`Heatmap: ${method} for`),
        ),
        'the SR comment names the method',
      );
    },
  );
}

test.serial(
  'one batch: results follow the input order, an unreadable file fails alone, classify and explain agree',
  async (t) => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'image-work-'));
    const a = await writeImageFile(dir, { seed: 1, rows: 90, columns: 110 });
    const b = await writeImageFile(dir, { seed: 2, photometric: 'MONOCHROME1' });
    const broken = path.join(dir, 'broken.dcm');
    const whole = makeImageFile({}).bytes;
    writeFileSync(broken, whole.subarray(0, whole.length - 5000));
    const files = [
      { id: 'a', path: a.path },
      { id: 'broken', path: broken },
      { id: 'b', path: b.path },
    ];
    const explained = await analyseImages(engine, files, { kind: 'explain', target: 'predicted' });
    const classified = await analyseImages(engine, files, { kind: 'classify' });
    t.deepEqual(
      explained.map((r) => [r.id, r.kind]),
      [
        ['a', 'analysed'],
        ['broken', 'failed'],
        ['b', 'analysed'],
      ],
    );
    t.deepEqual(
      classified.map((r) => [r.id, r.kind]),
      explained.map((r) => [r.id, r.kind]),
    );
    const failed = explained[1];
    if (failed?.kind === 'failed') {
      t.is(failed.stage, 'decode');
      t.true(failed.error instanceof GatewayError);
      t.regex((failed.error as GatewayError).code, /^PIXELS_/);
    }
    for (const i of [0, 2]) {
      const e = explained[i];
      const c = classified[i];
      if (e?.kind !== 'analysed' || c?.kind !== 'analysed') return t.fail(`image ${i}`);
      // One forward pass either way: LRP's logits are the classifier's.
      t.true(maxAbsDiff(e.classification.probabilities, c.classification.probabilities) < 1e-5, `image ${i}`);
      t.is(e.heatmap?.explanation.targetClass, e.classification.predicted, 'the explained class is the reported one');
      t.is(c.heatmap, undefined, 'classify draws no heatmap');
    }

    // The worker's function maps the same failure to the image's code and writes the others.
    const results = await processImages(engine, request(files.map((f) => ({ sopInstanceUid: f.id, path: f.path }))));
    t.deepEqual(
      results.map((r) => [r.sopInstanceUid, r.kind]),
      [
        ['a', 'written'],
        ['broken', 'failed'],
        ['b', 'written'],
      ],
    );
    if (results[1]?.kind === 'failed') t.regex(results[1].code, /^PIXELS_/);
  },
);

test.serial(
  'the worker writes the SC in the requested encoding and reports a picture scaled down to the size cap',
  async (t) => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'image-work-'));
    const source = await writeImageFile(dir, { rows: 600, columns: 500, seed: 7 });
    const images = [{ sopInstanceUid: source.sopInstanceUid, path: source.path }];
    const [plain] = await processImages(engine, { ...request(images), scEncoding: { encoding: 'jpeg-ls-lossless' } });
    if (plain?.kind !== 'written') return t.fail(JSON.stringify(plain));
    const plainSc = plain.outputs.find((o) => o.kind === 'sc');
    if (plainSc === undefined) return t.fail('no SC');
    t.is(plainSc.downscaled, undefined);
    const bytes = readFileSync(plainSc.path);
    t.true(bytes.includes(Buffer.from('1.2.840.10008.1.2.4.80')), 'JPEG-LS Lossless transfer syntax');
    // A cap below what that SC took: the worker scales it down and says so in its result.
    const maxBytes = 256 * 1024;
    t.true(bytes.length > maxBytes, `the uncapped SC (${bytes.length} bytes) must exceed the cap for this test`);
    const [capped] = await processImages(engine, {
      ...request(images),
      scEncoding: { encoding: 'jpeg-ls-lossless', maxBytes },
    });
    if (capped?.kind !== 'written') return t.fail(JSON.stringify(capped));
    const cappedSc = capped.outputs.find((o) => o.kind === 'sc');
    if (cappedSc?.downscaled === undefined) return t.fail('not reported as scaled down');
    t.true(readFileSync(cappedSc.path).length <= maxBytes);
    t.is(cappedSc.downscaled.maxBytes, maxBytes);
    t.true(cappedSc.downscaled.to.rows < cappedSc.downscaled.from.rows);
  },
);
