import test from 'ava';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { InferencePool } from '../../src/analysis/inference-pool.js';
import { readManifest } from '../../src/inference/model-manifest.js';
import type { DeliveryPayload, DeliveryTarget } from '../../src/export/delivery-target.js';
import type { ImageWorkRequest, ImageWorkResult } from '../../src/analysis/image-work.js';
import { Pipeline } from '../../src/pipeline/pipeline.js';
import { PipelineStore } from '../../src/store/pipeline-store.js';
import { newUid, writeImageFile } from '../helpers/dicom-factory.js';
import { tinyModelDir } from '../helpers/tiny-densenet.js';
import { chestPipelineConfig, openTestStore, recordTestInstance, writtenResult } from '../helpers/pipeline-harness.js';
import { waitUntil } from '../helpers/wait-until.js';
import { capturingLogger } from '../store/disk-full-helpers.js';

// The specification under the real-peer test of the same name: with one inference lane busy on a later job,
// the deliveries of a job already written go out. The stand-in pool answers only when the test says so, so
// "still being classified" is a fact, not a race between two speeds.

test('the deliveries of a written job go out while the one inference lane is still busy with the next job', async (t) => {
  const config = chestPipelineConfig();
  const store = openTestStore('not-behind-db-');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'not-behind-in-'));
  const studies: string[] = [];
  const studyOf = new Map<string, string>();
  for (let i = 0; i < 3; i += 1) {
    const image = await writeImageFile(dir, { studyInstanceUid: newUid(), seed: i });
    studies.push(image.studyInstanceUid);
    studyOf.set(image.sopInstanceUid, image.studyInstanceUid);
    recordTestInstance(store, image, 1000 + i);
  }
  store.promoteQuietStudies(Date.now(), Date.now());
  // Each batch waits in `pending` until the test answers it.
  const pending: Array<{ request: ImageWorkRequest; answer: () => void }> = [];
  const pool = {
    size: 1,
    process: (request: ImageWorkRequest) =>
      new Promise<ImageWorkResult[]>((resolve) =>
        pending.push({ request, answer: () => resolve(request.images.map((i) => writtenResult(i.sopInstanceUid))) }),
      ),
  } as unknown as InferencePool;
  const delivered: Array<{ destination: string; payload: DeliveryPayload }> = [];
  const target = (name: string, kind: 'pacs' | 'ris'): DeliveryTarget => ({
    name,
    kind,
    deliver: async (payload) => {
      delivered.push({ destination: name, payload });
      return { kind: 'delivered' };
    },
  });
  const { logger } = capturingLogger();
  const pipelineStore = new PipelineStore(store.connection);
  const pipeline = new Pipeline({
    config,
    store,
    pipelineStore,
    models: new Map([['tiny', { pool, manifest: readManifest(tinyModelDir()) }]]),
    targets: new Map([
      ['pacs', target('pacs', 'pacs')],
      ['ris', target('ris', 'ris')],
    ]),
    outputsDir: mkdtempSync(path.join(os.tmpdir(), 'not-behind-out-')),
    logger,
  });
  const jobState = (uid: string) => store.listJobs().find((j) => j.studyInstanceUid === uid)?.state;
  const studyOfBatch = (k: number) => studyOf.get(pending[k]?.request.images[0]?.sopInstanceUid ?? '') ?? '';
  pipeline.start();
  try {
    for (let k = 0; k < studies.length; k += 1) {
      await waitUntil(() => pending.length === k + 1, `the lane asking for batch #${k}`, 10_000);
      if (k > 0) {
        // Batch #k is unanswered: the job of batch #k-1 is delivered to both destinations all the same.
        const previous = studyOfBatch(k - 1);
        await waitUntil(
          () => jobState(previous) === 'done',
          `the job of batch #${k - 1} delivered while batch #${k} is classified`,
          10_000,
        );
        t.is(jobState(studyOfBatch(k)), 'processing');
        t.deepEqual(
          delivered.map((d) => d.destination),
          Array.from({ length: k }, () => ['pacs', 'ris']).flat(),
        );
      }
      pending[k]!.answer();
    }
    await waitUntil(() => studies.every((s) => jobState(s) === 'done'), 'every job delivered', 10_000);
    t.is(delivered.length, 2 * studies.length);
  } finally {
    for (const p of pending) p.answer();
    await pipeline.stop();
  }
});
