import test from 'ava';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { InferencePool } from '../../src/analysis/inference-pool.js';
import { readManifest } from '../../src/inference/model-manifest.js';
import type { DeliveryPayload, DeliveryTarget } from '../../src/export/delivery-target.js';
import type { ImageWorkRequest } from '../../src/analysis/image-work.js';
import { Pipeline } from '../../src/pipeline/pipeline.js';
import { JobStore } from '../../src/store/job-store.js';
import { PipelineStore } from '../../src/store/pipeline-store.js';
import type { SqlValue } from '../../src/store/sql-database.js';
import { newUid, writeImageFile } from '../helpers/dicom-factory.js';
import { tinyModelDir } from '../helpers/tiny-densenet.js';
import { chestPipelineConfig, openTestStore, recordTestInstance, writtenResult } from '../helpers/pipeline-harness.js';
import { waitUntil } from '../helpers/wait-until.js';
import { capturingLogger } from '../store/disk-full-helpers.js';

// A damaged JSON column of the job store (a real SQLite file, edited behind the pipeline's back) fails only
// its own job, image or delivery with STORED_JSON_INVALID; the pipeline goes on with the other studies. Each
// row is damaged at a point the pipeline provably has not read it yet (inside a stand-in pool or target
// callback that runs before), never by timing.

interface Study {
  studyInstanceUid: string;
  sops: string[];
}

interface Hooks {
  /** Called by the stand-in pool before it answers a batch. */
  onProcess?: (request: ImageWorkRequest, h: Harness) => void;
  /** Called by the stand-in targets before they answer a delivery. */
  onDeliver?: (payload: DeliveryPayload, h: Harness) => void;
}

interface Harness {
  pipeline: Pipeline;
  store: JobStore;
  lines: Array<Record<string, unknown>>;
  delivered: DeliveryPayload[];
  studies: Study[];
  sql: (statement: string, ...params: SqlValue[]) => void;
  jobOf: (s: Study) => ReturnType<JobStore['listJobs']>[number];
  deliveriesOf: (s: Study) => Array<{ kind: string; state: string; last_error: string | null }>;
}

async function harness(imagesPerStudy: number[], hooks: Hooks, maxBatch = 4): Promise<Harness> {
  const config = chestPipelineConfig({ maxBatch });
  const store = openTestStore('stored-json-db-');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'stored-json-in-'));
  const studies: Study[] = [];
  let received = 1000;
  for (const count of imagesPerStudy) {
    const study: Study = { studyInstanceUid: newUid(), sops: [] };
    for (let i = 0; i < count; i += 1) {
      const image = await writeImageFile(dir, {
        studyInstanceUid: study.studyInstanceUid,
        seed: i,
        instanceNumber: i + 1,
      });
      study.sops.push(image.sopInstanceUid);
      recordTestInstance(store, image, (received += 1));
    }
    studies.push(study);
  }
  store.promoteQuietStudies(Date.now(), Date.now());
  const db = store.connection;
  const delivered: DeliveryPayload[] = [];
  const { logger, lines } = capturingLogger();
  const h: Harness = {
    pipeline: undefined as unknown as Pipeline,
    store,
    lines,
    delivered,
    studies,
    sql: (statement, ...params) => void db.prepare(statement).run(...params),
    jobOf: (s) => {
      const job = store.listJobs().find((j) => j.studyInstanceUid === s.studyInstanceUid);
      if (!job) throw new Error(`no job for ${s.studyInstanceUid}`);
      return job;
    },
    deliveriesOf: (s) =>
      db
        .prepare(
          'SELECT d.kind, d.state, d.last_error FROM deliveries d JOIN jobs j ON j.id = d.job_id WHERE j.study_instance_uid = ? ORDER BY d.id',
        )
        .all(s.studyInstanceUid) as Array<{ kind: string; state: string; last_error: string | null }>,
  };
  const pool = {
    size: 1,
    process: async (request: ImageWorkRequest) => {
      hooks.onProcess?.(request, h);
      return request.images.map((i) => writtenResult(i.sopInstanceUid));
    },
  } as unknown as InferencePool;
  const target = (name: string, kind: 'pacs' | 'ris'): DeliveryTarget => ({
    name,
    kind,
    deliver: async (payload) => {
      hooks.onDeliver?.(payload, h);
      delivered.push(payload);
      return { kind: 'delivered' };
    },
  });
  h.pipeline = new Pipeline({
    config,
    store,
    pipelineStore: new PipelineStore(db),
    models: new Map([['tiny', { pool, manifest: readManifest(tinyModelDir()) }]]),
    targets: new Map([
      ['pacs', target('pacs', 'pacs')],
      ['ris', target('ris', 'ris')],
    ]),
    outputsDir: mkdtempSync(path.join(os.tmpdir(), 'stored-json-out-')),
    logger,
  });
  return h;
}

const settled = (h: Harness) => () =>
  h.studies.every(
    (s) =>
      ['done', 'failed', 'parked'].includes(h.jobOf(s).state) && h.deliveriesOf(s).every((d) => d.state !== 'pending'),
  );

test('a damaged jobs.action fails that job with STORED_JSON_INVALID; the next study is still delivered', async (t) => {
  const h = await harness([1, 1], {
    // The first study's batch runs after both jobs were routed: the second's action is damaged before it is read.
    onProcess: (request, h) => {
      if (request.images[0]?.sopInstanceUid === h.studies[0]!.sops[0])
        h.sql('UPDATE jobs SET action = \'{"model": 7}\' WHERE study_instance_uid = ?', h.studies[1]!.studyInstanceUid);
    },
  });
  h.pipeline.start();
  await waitUntil(settled(h), 'both jobs settled', 20_000);
  await h.pipeline.stop();
  const [good, bad] = h.studies as [Study, Study];
  t.is(h.jobOf(good).state, 'done');
  t.deepEqual(
    h.deliveriesOf(good).map((d) => d.state),
    ['delivered', 'delivered'],
  );
  t.is(h.jobOf(bad).state, 'failed');
  t.regex(
    h.jobOf(bad).lastError ?? '',
    /^STORED_JSON_INVALID: the job store's jobs\.action of job \d+ cannot be read: its shape is wrong \(model: /,
  );
  t.true(
    h.lines.some(
      (l) => l.level === 'error' && l.code === 'STORED_JSON_INVALID' && l.studyInstanceUid === bad.studyInstanceUid,
    ),
  );
  t.false(h.lines.some((l) => /pipeline pass failed/.test(String(l.message))));
});

test("a damaged instances.attributes fails that image alone; the study's other image is written and delivered", async (t) => {
  const h = await harness([2], {});
  const [study] = h.studies as [Study];
  h.sql("UPDATE instances SET attributes = '{not json' WHERE sop_instance_uid = ?", study.sops[0] ?? null);
  h.pipeline.start();
  await waitUntil(settled(h), 'the job settled', 20_000);
  await h.pipeline.stop();
  const job = h.jobOf(study);
  t.is(job.state, 'done');
  t.regex(
    job.lastError ?? '',
    new RegExp(
      `1 of 2 image\\(s\\) failed: ${study.sops[0]!.replace(/\./g, '\\.')}: STORED_JSON_INVALID: .*instances\\.attributes of instance .* not valid JSON`,
    ),
  );
  t.deepEqual(
    h.deliveriesOf(study).map((d) => d.state),
    ['delivered', 'delivered'],
  );
});

test('a damaged job_images.result fails that job when its deliveries are built; the next study is still delivered', async (t) => {
  const h = await harness(
    [2, 1],
    {
      // One image per batch: while the first study's later image is processed, its other one is already written.
      // The job's images go in SOP Instance UID order (random UIDs here), so the damage goes to whichever of the
      // two is written by then, never to one still pending (which its own result would then overwrite).
      onProcess: (request, h) => {
        const first = h.studies[0]!;
        const current = request.images[0]?.sopInstanceUid;
        if (current === undefined || !first.sops.includes(current)) return;
        const other = first.sops.find((sop) => sop !== current);
        h.sql(
          'UPDATE job_images SET result = \'{"kind":"written"}\' WHERE sop_instance_uid = ? AND state = \'written\'',
          other ?? null,
        );
      },
    },
    1,
  );
  h.pipeline.start();
  await waitUntil(settled(h), 'both jobs settled', 20_000);
  await h.pipeline.stop();
  const [bad, good] = h.studies as [Study, Study];
  t.is(h.jobOf(bad).state, 'failed');
  t.regex(
    h.jobOf(bad).lastError ?? '',
    /^STORED_JSON_INVALID: the job store's job_images\.result of job \d+ image [\d.]+ cannot be read: its shape is wrong/,
  );
  t.deepEqual(h.deliveriesOf(bad), []);
  t.is(h.jobOf(good).state, 'done');
  t.deepEqual(
    h.deliveriesOf(good).map((d) => d.state),
    ['delivered', 'delivered'],
  );
});

test('a damaged deliveries.payload parks that delivery at once with cause stored-json-invalid; the other deliveries go on', async (t) => {
  let damaged = false;
  const h = await harness([1, 1], {
    // The first PACS delivery: the RIS report of the same job (queued with it, held behind it) is damaged first.
    onDeliver: (payload, h) => {
      if (damaged || payload.kind !== 'pacs') return;
      damaged = true;
      h.sql(
        'UPDATE deliveries SET payload = \'{"kind":"ris","file":3}\' WHERE kind = \'ris\' AND job_id = (SELECT id FROM jobs WHERE study_instance_uid = ?)',
        h.studies[0]!.studyInstanceUid,
      );
    },
  });
  h.pipeline.start();
  await waitUntil(settled(h), 'every delivery settled', 20_000);
  await h.pipeline.stop();
  const [bad, good] = h.studies as [Study, Study];
  const badDeliveries = h.deliveriesOf(bad);
  t.deepEqual(
    badDeliveries.map((d) => [d.kind, d.state]),
    [
      ['pacs', 'delivered'],
      ['ris', 'parked'],
    ],
  );
  t.regex(
    badDeliveries[1]!.last_error ?? '',
    /^stored-json-invalid: the job store's deliveries\.payload of delivery \d+ cannot be read: its shape is wrong \(file: /,
  );
  t.true(h.lines.some((l) => l.level === 'error' && l.cause === 'stored-json-invalid' && l.attempt === 1));
  t.is(h.jobOf(bad).state, 'parked');
  t.deepEqual(
    h.deliveriesOf(good).map((d) => d.state),
    ['delivered', 'delivered'],
  );
  t.is(h.delivered.filter((p) => p.kind === 'ris').length, 1);
});
