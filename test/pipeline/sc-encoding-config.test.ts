// The pipeline hands the site's secondaryCapture settings to the inference workers, and logs each SC a worker had to
// scale down to fit the size cap (ANALYSIS-5017) with the sizes before and after. The pool is a stand-in: what
// the pipeline sends and logs is the point here, not the model.
import test from 'ava';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { InferencePool } from '../../src/analysis/inference-pool.js';
import type { ImageWorkRequest, ImageWorkResult } from '../../src/analysis/image-work.js';
import { secondaryCaptureSchema } from '../../src/config/schema.js';
import type { DeliveryTarget } from '../../src/export/delivery-target.js';
import { readManifest } from '../../src/inference/model-manifest.js';
import { Pipeline } from '../../src/pipeline/pipeline.js';
import { PipelineStore } from '../../src/store/pipeline-store.js';
import { newUid, writeImageFile } from '../helpers/dicom-factory.js';
import { chestPipelineConfig, openTestStore, recordTestInstance, writtenResult } from '../helpers/pipeline-harness.js';
import { tinyModelDir } from '../helpers/tiny-densenet.js';
import { waitUntil } from '../helpers/wait-until.js';
import { capturingLogger } from '../store/disk-full-helpers.js';

test('the workers get secondaryCapture from the config; a downscaled SC is logged as ANALYSIS-5017', async (t) => {
  const config = {
    ...chestPipelineConfig(),
    secondaryCapture: secondaryCaptureSchema.parse({ encoding: 'jpeg-ls-lossless', maxBytes: 300_000 }),
  };
  const store = openTestStore('pipeline-sc-');
  t.teardown(() => store.close());
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pipeline-sc-in-'));
  const image = await writeImageFile(dir, { studyInstanceUid: newUid() });
  recordTestInstance(store, image, 1000);
  store.promoteQuietStudies(Date.now(), Date.now());
  const requests: ImageWorkRequest[] = [];
  const scFile = path.join(dir, 'sc.dcm');
  writeFileSync(scFile, 'stand-in');
  const pool = {
    size: 1,
    process: async (request: ImageWorkRequest): Promise<ImageWorkResult[]> => {
      requests.push(request);
      return request.images.map((i) => ({
        ...writtenResult(i.sopInstanceUid),
        outputs: [
          {
            kind: 'sc',
            path: scFile,
            sopClassUid: '1.2.840.10008.5.1.4.1.1.7',
            sopInstanceUid: `${i.sopInstanceUid}.77`,
            seriesInstanceUid: `${i.sopInstanceUid}.78`,
            downscaled: { from: { rows: 2048, columns: 1800 }, to: { rows: 1024, columns: 900 }, maxBytes: 300_000 },
          },
        ],
      }));
    },
  } as unknown as InferencePool;
  const target = (name: string, kind: 'pacs' | 'ris'): DeliveryTarget => ({
    name,
    kind,
    deliver: async () => ({ kind: 'delivered' }),
  });
  const { logger, lines } = capturingLogger();
  const pipeline = new Pipeline({
    config,
    store,
    pipelineStore: new PipelineStore(store.connection),
    models: new Map([['tiny', { pool, manifest: readManifest(tinyModelDir()) }]]),
    targets: new Map([
      ['pacs', target('pacs', 'pacs')],
      ['ris', target('ris', 'ris')],
    ]),
    outputsDir: mkdtempSync(path.join(os.tmpdir(), 'pipeline-sc-out-')),
    logger,
  });
  pipeline.start();
  t.teardown(() => pipeline.stop());
  await waitUntil(() => lines.some((l) => l.event === 'ANALYSIS-5010'), 'the image written');
  t.deepEqual(requests[0]?.scEncoding, { encoding: 'jpeg-ls-lossless', jpegQuality: 90, maxBytes: 300_000 });
  const line = lines.find((l) => l.event === 'ANALYSIS-5017');
  t.like(line, {
    level: 'info',
    sopInstanceUid: `${image.sopInstanceUid}.77`,
    from: '1800x2048',
    to: '900x1024',
    maxBytes: 300_000,
  });
});
