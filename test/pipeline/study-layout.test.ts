// The series layout the pipeline queues for a PACS, in-process with a real SQLite store and stand-in worker and
// destinations: the images numbered in a stable order, one SR per study revision after the heatmaps, and for a
// corrected revision a rejection note last, listing exactly what the superseded revision sent, for every PACS
// destination but one that says rejectSuperseded: false.
import test from 'ava';
import type { NaturalDataset } from 'dcmjs';
import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { InferencePool } from '../../src/analysis/inference-pool.js';
import type { ImageWorkRequest, ImageWorkResult } from '../../src/analysis/image-work.js';
import { configSchema } from '../../src/config/schema.js';
import type { DeliveryPayload, DeliveryTarget } from '../../src/export/delivery-target.js';
import { readManifest } from '../../src/inference/model-manifest.js';
import { Pipeline } from '../../src/pipeline/pipeline.js';
import { imagePositions, supersededRevision } from '../../src/pipeline/study-objects.js';
import { KEY_OBJECT_SELECTION_SOP_CLASS_UID } from '../../src/reporting/rejection-note.js';
import { SC_SOP_CLASS_UID } from '../../src/reporting/secondary-capture.js';
import { COMPREHENSIVE_SR_SOP_CLASS_UID } from '../../src/reporting/structured-report.js';
import { PipelineStore } from '../../src/store/pipeline-store.js';
import { newUid, writeImageFile } from '../helpers/dicom-factory.js';
import { openTestStore, recordTestInstance, writtenResult } from '../helpers/pipeline-harness.js';
import { tinyModelDir } from '../helpers/tiny-densenet.js';
import { waitUntil } from '../helpers/wait-until.js';
import { readBack } from '../reporting/reporting-fixtures.js';
import { capturingLogger } from '../store/disk-full-helpers.js';

const items = (ds: NaturalDataset | undefined, keyword: string): NaturalDataset[] => {
  const v = ds?.[keyword];
  return Array.isArray(v) ? (v as NaturalDataset[]) : [];
};

test('image positions: by series number, then instance number, then SOP Instance UID; the same whatever the input order', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'positions-'));
  const study = newUid();
  const image = (seriesNumber: number, instanceNumber: number, sopInstanceUid: string) =>
    writeImageFile(dir, { studyInstanceUid: study, seriesNumber, instanceNumber, sopInstanceUid });
  const files = [
    await image(2, 1, '2.25.5'),
    await image(1, 10, '2.25.4'),
    await image(1, 2, '2.25.3'),
    await image(1, 2, '2.25.2'),
  ].map((f) => ({ sopInstanceUid: f.sopInstanceUid, path: f.path }));
  const unreadable = { sopInstanceUid: '2.25.1', path: path.join(dir, 'missing.dcm') };
  const expected = [
    ['2.25.2', 1],
    ['2.25.3', 2],
    ['2.25.4', 3],
    ['2.25.5', 4],
    ['2.25.1', 5],
  ];
  t.deepEqual([...imagePositions([...files, unreadable])], expected);
  t.deepEqual([...imagePositions([unreadable, ...files].reverse())], expected);
});

interface Layout {
  pipeline: Pipeline;
  pipelineStore: PipelineStore;
  requests: ImageWorkRequest[];
  delivered: Array<{ destination: string; payload: DeliveryPayload }>;
  lines: Array<Record<string, unknown>>;
  jobs: () => Array<{ revision: number; state: string }>;
}

/**
 * A pipeline whose stand-in worker answers each image with one heatmap SC output (a path in the revision's folder,
 * never written: the stand-in PACS only records the payload); the SR and the rejection note are the pipeline's own.
 */
function layoutPipeline(store: ReturnType<typeof openTestStore>, outputsDir: string, lanes = 1): Layout {
  const manifest = readManifest(tinyModelDir());
  const config = configSchema.parse({
    models: { tiny: tinyModelDir() },
    inference: { defaultModel: 'tiny' },
    destinations: {
      pacs: [
        { type: 'folder', name: 'pacs', path: '/nonexistent' },
        { type: 'folder', name: 'pacs-keep', path: '/nonexistent', rejectSuperseded: false },
      ],
      ris: [],
    },
    rules: [
      {
        name: 'chest',
        match: { attributes: { Modality: { oneOf: ['DX'] } } },
        action: { model: 'tiny', outputs: ['sc', 'sr'], pacs: ['pacs', 'pacs-keep'], ris: [] },
      },
    ],
  });
  const requests: ImageWorkRequest[] = [];
  const pool = {
    size: lanes,
    process: async (request: ImageWorkRequest): Promise<ImageWorkResult[]> => {
      requests.push(request);
      const series = `2.25.${900 + request.revision}`;
      return request.images.map((i) => {
        const sop = newUid();
        return {
          ...(writtenResult(i.sopInstanceUid) as Extract<ImageWorkResult, { kind: 'written' }>),
          model: { modelUid: manifest.modelUid, version: manifest.version },
          outputs: [
            {
              kind: 'sc',
              path: path.join(request.outDir, `${sop}.dcm`),
              sopClassUid: SC_SOP_CLASS_UID['secondary-capture'],
              sopInstanceUid: sop,
              seriesInstanceUid: series,
            },
          ],
        };
      });
    },
  } as unknown as InferencePool;
  const delivered: Layout['delivered'] = [];
  const target = (name: string): DeliveryTarget => ({
    name,
    kind: 'pacs',
    deliver: async (payload) => {
      delivered.push({ destination: name, payload });
      return { kind: 'delivered' };
    },
  });
  const { logger, lines } = capturingLogger();
  const pipelineStore = new PipelineStore(store.connection);
  const pipeline = new Pipeline({
    config,
    store,
    pipelineStore,
    models: new Map([['tiny', { pool, manifest }]]),
    targets: new Map([
      ['pacs', target('pacs')],
      ['pacs-keep', target('pacs-keep')],
    ]),
    outputsDir,
    logger,
  });
  return {
    pipeline,
    pipelineStore,
    requests,
    delivered,
    lines,
    jobs: () => store.listJobs().map((j) => ({ revision: j.revision, state: j.state })),
  };
}

test('revision 0: heatmaps in the images order then one SR; revision 1 (a late image): heatmaps, SR, then the rejection note of revision 0, except for the PACS that says rejectSuperseded: false', async (t) => {
  const store = openTestStore('study-layout-db-');
  t.teardown(() => store.close());
  const dir = mkdtempSync(path.join(os.tmpdir(), 'study-layout-in-'));
  const outputsDir = mkdtempSync(path.join(os.tmpdir(), 'study-layout-out-'));
  const study = newUid();
  const images = [];
  // Received in an order that is not the series/instance order.
  for (const [seriesNumber, instanceNumber] of [
    [2, 1],
    [1, 2],
    [1, 1],
  ] as const)
    images.push(
      await writeImageFile(dir, { studyInstanceUid: study, seriesNumber, instanceNumber, seed: instanceNumber }),
    );
  let clock = 1000;
  for (const image of images) recordTestInstance(store, image, (clock += 1));
  store.promoteQuietStudies(clock, clock);
  const h = layoutPipeline(store, outputsDir);
  await h.pipeline.start();
  t.teardown(() => h.pipeline.stop());
  const done = (revision: number) => () =>
    h.jobs().some((j) => j.revision === revision && j.state === 'done') &&
    h.delivered.filter((d) => d.payload.kind === 'pacs').length >= 2 * (revision + 1);
  await waitUntil(done(0), 'revision 0 delivered to both PACS', 30_000);

  const numbered = new Map(h.requests.flatMap((r) => r.images.map((i) => [i.sopInstanceUid, i.instanceNumber])));
  t.deepEqual(
    [images[2], images[1], images[0]].map((i) => numbered.get(i!.sopInstanceUid)),
    [1, 2, 3],
    'series 1 instance 1, series 1 instance 2, series 2 instance 1',
  );
  const filesOf = (revision: number, destination: string): string[] => {
    const d = h.delivered.filter((x) => x.destination === destination)[revision];
    return d?.payload.kind === 'pacs' ? d.payload.files : [];
  };
  const r0 = filesOf(0, 'pacs');
  t.is(r0.length, 4, 'three heatmaps and one SR');
  t.deepEqual(filesOf(0, 'pacs-keep'), r0);
  const sr0 = readBack(readFileSync(r0[3]!));
  t.is(sr0.SOPClassUID, COMPREHENSIVE_SR_SOP_CLASS_UID);
  t.is(sr0.SeriesNumber, 9002);
  const groups = items(
    items(sr0, 'ContentSequence').find(
      (c) => items(c, 'ConceptNameCodeSequence')[0]?.CodeMeaning === 'Imaging Measurements',
    ),
    'ContentSequence',
  );
  t.is(groups.length, 3, 'one measurement group per image');
  t.false(r0.some((f) => /KO|kos/.test(f)));

  // A late image reopens the study: revision 1 covers all four images.
  const late = await writeImageFile(dir, { studyInstanceUid: study, seriesNumber: 2, instanceNumber: 2, seed: 9 });
  recordTestInstance(store, late, (clock += 1));
  store.promoteQuietStudies(clock + 10_000, clock + 10_000);
  h.pipeline.wake();
  await waitUntil(done(1), 'revision 1 delivered to both PACS', 30_000);

  const r1 = filesOf(1, 'pacs');
  t.is(r1.length, 6, 'four heatmaps, one SR, one rejection note');
  const kos = readBack(readFileSync(r1[5]!));
  t.is(kos.SOPClassUID, KEY_OBJECT_SELECTION_SOP_CLASS_UID);
  t.is(kos.SeriesNumber, 9013);
  t.deepEqual(filesOf(1, 'pacs-keep'), r1.slice(0, 5), 'no rejection note where rejectSuperseded is false');
  // The note lists exactly what revision 0 sent: its three heatmaps and its SR.
  const listed = items(items(kos, 'CurrentRequestedProcedureEvidenceSequence')[0], 'ReferencedSeriesSequence').flatMap(
    (s) => items(s, 'ReferencedSOPSequence').map((r) => String(r.ReferencedSOPInstanceUID)),
  );
  const sentUids = r0.map((f) => path.basename(f, '.dcm'));
  t.deepEqual([...listed].sort(), [...sentUids].sort());
  // The new SR names revision 0's as its predecessor and says it corrects it.
  const sr1 = readBack(readFileSync(r1[4]!));
  t.is(sr1.SeriesNumber, 9012);
  t.regex(String(sr1.SeriesDescription), /corrected, replaces r0/);
  const predecessor = items(items(sr1, 'PredecessorDocumentsSequence')[0], 'ReferencedSeriesSequence')[0];
  t.is(items(predecessor, 'ReferencedSOPSequence')[0]?.ReferencedSOPInstanceUID, sr0.SOPInstanceUID);
  t.true(h.requests.filter((r) => r.revision === 1).every((r) => r.supersedesRevision === 0));
  t.like(
    h.lines.find((l) => l.event === 'PIPELINE-4007' && l.revision === 1),
    { supersedes: 0, rejectionNote: kos.SOPInstanceUID, sr: sr1.SOPInstanceUID },
  );

  // Only what the superseded revision's deliveries name is rejected: an output its payload left out is not listed.
  const r0Job = h.pipelineStore.earlierJobs(study, 1)[0];
  if (r0Job === undefined) return t.fail('no revision 0 job');
  const dropped = r0[0]!;
  store.connection
    .prepare(`UPDATE deliveries SET payload = ? WHERE job_id = ?`)
    .run(JSON.stringify({ kind: 'pacs', files: r0.filter((f) => f !== dropped) }), r0Job.jobId);
  const again = supersededRevision(h.pipelineStore, outputsDir, study, 1);
  t.is(again?.revision, 0);
  t.deepEqual(
    again?.objects.map((o) => o.sopInstanceUid).sort(),
    sentUids.filter((u) => u !== path.basename(dropped, '.dcm')).sort(),
  );
  t.is(again?.sr?.sopInstanceUid, String(sr0.SOPInstanceUID));
  // A revision that sent nothing is passed over; with nothing sent at all there is nothing to reject.
  store.connection
    .prepare(`UPDATE deliveries SET payload = ? WHERE job_id = ?`)
    .run(JSON.stringify({ kind: 'pacs', files: [] }), r0Job.jobId);
  t.is(supersededRevision(h.pipelineStore, outputsDir, study, 1), undefined);
  t.is(supersededRevision(h.pipelineStore, outputsDir, study, 0), undefined);
});

test('two revisions waiting at start with two lanes: the later one is processed only after the earlier one, so its rejection note lists what the earlier one sent', async (t) => {
  const store = openTestStore('study-layout-db-');
  t.teardown(() => store.close());
  const dir = mkdtempSync(path.join(os.tmpdir(), 'study-layout-in-'));
  const outputsDir = mkdtempSync(path.join(os.tmpdir(), 'study-layout-out-'));
  const study = newUid();
  let clock = 1000;
  recordTestInstance(
    store,
    await writeImageFile(dir, { studyInstanceUid: study, instanceNumber: 1, seed: 1 }),
    ++clock,
  );
  store.promoteQuietStudies(clock, clock);
  // Both revisions' jobs exist before the pipeline starts (as after a restart): two lanes could take both at once.
  recordTestInstance(
    store,
    await writeImageFile(dir, { studyInstanceUid: study, instanceNumber: 2, seed: 2 }),
    ++clock,
  );
  store.promoteQuietStudies(clock + 10_000, clock + 10_000);
  t.deepEqual(
    store.listJobs().map((j) => [j.revision, j.state]),
    [
      [0, 'ready'],
      [1, 'ready'],
    ],
  );
  const h = layoutPipeline(store, outputsDir, 2);
  await h.pipeline.start();
  t.teardown(() => h.pipeline.stop());
  await waitUntil(
    () => h.jobs().every((j) => j.state === 'done') && h.delivered.length === 4,
    'both revisions delivered to both PACS',
    30_000,
  );
  t.deepEqual(
    h.requests.map((r) => r.revision),
    [0, 1],
  );
  const r1 = h.delivered.filter((d) => d.destination === 'pacs')[1]?.payload;
  const files = r1?.kind === 'pacs' ? r1.files : [];
  t.is(files.length, 2 + 1 + 1, 'two heatmaps, the SR, the rejection note');
  t.is(readBack(readFileSync(files[3]!)).SOPClassUID, KEY_OBJECT_SELECTION_SOP_CLASS_UID);
});
