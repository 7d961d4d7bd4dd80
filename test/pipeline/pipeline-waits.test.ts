import test, { type ExecutionContext } from 'ava';
import { closeSync, mkdtempSync, openSync, readdirSync, rmSync, writeSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { WorkerCrashedError, type InferencePool } from '../../src/analysis/inference-pool.js';
import { readManifest } from '../../src/inference/model-manifest.js';
import type { DeliveryPayload, DeliveryTarget } from '../../src/export/delivery-target.js';
import type { ImageWorkRequest, ImageWorkResult } from '../../src/analysis/image-work.js';
import { Pipeline } from '../../src/pipeline/pipeline.js';
import { JobStore } from '../../src/store/job-store.js';
import { PipelineStore } from '../../src/store/pipeline-store.js';
import { newUid, writeImageFile } from '../helpers/dicom-factory.js';
import { tinyModelDir } from '../helpers/tiny-densenet.js';
import { chestPipelineConfig, openTestStore, recordTestInstance, writtenResult } from '../helpers/pipeline-harness.js';
import { waitUntil } from '../helpers/wait-until.js';
import { capturingLogger } from '../store/disk-full-helpers.js';

// The pipeline in-process with a stand-in for the inference pool (what it answers is the point here, not
// the model): a crashed batch goes image by image and a poison image fails after maxCrashesPerImage; an
// HL7 report that cannot be written for lack of space waits with a capped backoff and goes out once space is back.

interface Harness {
  pipeline: Pipeline;
  store: JobStore;
  pipelineStore: PipelineStore;
  lines: Array<Record<string, unknown>>;
  batches: string[][];
  delivered: DeliveryPayload[];
  studyInstanceUid: string;
  sops: string[];
}

async function harness(opts: {
  images: number;
  process: (request: ImageWorkRequest) => Promise<ImageWorkResult[]>;
  outputsDir: string;
  maxCrashesPerImage?: number;
  /** The node's store, under the node's name (default: the plain store; the pipeline names it). */
  pipelineStore?: (db: JobStore['connection'], node: string) => PipelineStore;
  spaceRetry?: { initialMs: number; maxMs: number };
  now?: () => number;
}): Promise<Harness> {
  const chest = chestPipelineConfig({ maxCrashesPerImage: opts.maxCrashesPerImage ?? 3 });
  // One hour between beats: the tests that need one call heartbeat() themselves.
  const config = {
    ...chest,
    cluster: { ...chest.cluster, nodeName: 'gw-test', leaseSeconds: 3600, heartbeatSeconds: 1200 },
  };
  const store = openTestStore('pipeline-db-');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pipeline-in-'));
  const studyInstanceUid = newUid();
  const sops: string[] = [];
  for (let i = 0; i < opts.images; i += 1) {
    const image = await writeImageFile(dir, { studyInstanceUid, seed: i, instanceNumber: i + 1 });
    sops.push(image.sopInstanceUid);
    recordTestInstance(store, image, 1000 + i);
  }
  store.promoteQuietStudies(Date.now(), Date.now());
  const batches: string[][] = [];
  const pool = {
    size: 1,
    process: (request: ImageWorkRequest) => {
      batches.push(request.images.map((i) => i.sopInstanceUid));
      return opts.process(request);
    },
  } as unknown as InferencePool;
  const delivered: DeliveryPayload[] = [];
  const target = (name: string, kind: 'pacs' | 'ris'): DeliveryTarget => ({
    name,
    kind,
    deliver: async (payload) => {
      delivered.push(payload);
      return { kind: 'delivered' };
    },
  });
  const { logger, lines } = capturingLogger();
  const pipelineStore = opts.pipelineStore?.(store.connection, 'gw-test') ?? new PipelineStore(store.connection);
  const pipeline = new Pipeline({
    config,
    store,
    pipelineStore,
    models: new Map([['tiny', { pool, manifest: readManifest(tinyModelDir()) }]]),
    targets: new Map([
      ['pacs', target('pacs', 'pacs')],
      ['ris', target('ris', 'ris')],
    ]),
    outputsDir: opts.outputsDir,
    logger,
    spaceRetry: opts.spaceRetry ?? { initialMs: 40, maxMs: 100 },
    ...(opts.now === undefined ? {} : { now: opts.now }),
  });
  return { pipeline, store, pipelineStore, lines, batches, delivered, studyInstanceUid, sops };
}

test('a batch that crashed a worker is retried image by image; the poison image fails after maxCrashesPerImage with its reason, the others are written', async (t) => {
  let poison = '';
  const h = await harness({
    images: 3,
    maxCrashesPerImage: 2,
    outputsDir: mkdtempSync(path.join(os.tmpdir(), 'pipeline-out-')),
    process: async (request) => {
      if (request.images.some((i) => i.sopInstanceUid === poison)) throw new WorkerCrashedError('exit code 70');
      return request.images.map((i) => writtenResult(i.sopInstanceUid));
    },
  });
  t.teardown(() => h.store.close());
  poison = h.sops[1] as string;
  h.pipeline.start();
  t.teardown(() => h.pipeline.stop());
  await waitUntil(() => h.store.listJobs()[0]?.state === 'done', 'the job done');
  const sorted = [...h.sops].sort();
  // The batch crashed (one crash each), then one by one: the poison's second crash fails it (max 2).
  t.deepEqual(h.batches, [sorted, ...sorted.map((s) => [s])]);
  const images = h.pipelineStore.jobImages(h.store.listJobs()[0]?.id ?? 0);
  t.like(
    images.find((i) => i.sopInstanceUid === poison),
    { state: 'failed', crashes: 2 },
  );
  t.regex(
    images.find((i) => i.sopInstanceUid === poison)?.reason ?? '',
    /^WORKER_CRASHED: the inference worker crashed 2 times on this image \(.*exit code 70\)/,
  );
  t.deepEqual(images.filter((i) => i.state === 'written').length, 2);
  const job = h.store.listJobs()[0];
  t.regex(job?.lastError ?? '', /^IMAGES_FAILED: 1 of 3 image\(s\) failed: /);
  t.is(job?.attempts, 1);
});

/** A 1 MB tmpfs filled to the last byte (unmounted at the test's end); rmSync(filler) gives the space back. */
function fullTmpfs(t: ExecutionContext): { outputs: string; filler: string } {
  const outputs = mkdtempSync(path.join(os.tmpdir(), 'pipeline-full-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', outputs]);
  t.teardown(() => execFileSync('umount', ['-l', outputs]));
  const filler = path.join(outputs, 'filler');
  const fd = openSync(filler, 'w');
  try {
    for (let size = 65536; size >= 1;) {
      try {
        writeSync(fd, Buffer.alloc(size, 1));
      } catch {
        size = Math.floor(size / 2);
      }
    }
  } finally {
    closeSync(fd);
  }
  return { outputs, filler };
}

test('no space for the HL7 report: the job waits with a doubling delay capped at maxMs, then the report is written and delivered once space is back', async (t) => {
  const { outputs, filler } = fullTmpfs(t);
  const h = await harness({
    images: 1,
    outputsDir: outputs,
    process: async (request) => request.images.map((i) => writtenResult(i.sopInstanceUid)),
  });
  t.teardown(() => h.store.close());
  h.pipeline.start();
  t.teardown(() => h.pipeline.stop());
  const waits = () => h.lines.filter((l) => l.event === 'PIPELINE-4004');
  await waitUntil(() => waits().length >= 4, 'four waits');
  t.deepEqual(
    waits()
      .slice(0, 4)
      .map((l) => l.retryInMs),
    [40, 80, 100, 100],
  );
  t.true(waits().every((l) => l.level === 'warn' && /HL7 report.*ENOSPC/.test(String(l.why))));
  const job = h.store.listJobs()[0];
  t.like(job, { state: 'processing' });
  t.regex(job?.lastError ?? '', /^NO_SPACE: waiting for disk space/);
  t.is(h.pipelineStore.jobImages(job?.id ?? 0)[0]?.state, 'written', 'the image result is kept while the report waits');

  rmSync(filler);
  await waitUntil(() => h.store.listJobs()[0]?.state === 'done', 'the job done after space came back');
  t.like(h.store.listJobs()[0], { lastError: null, nextAttemptAt: null });
  t.deepEqual(h.delivered.map((d) => d.kind).sort(), ['pacs', 'ris']);
  t.is(readdirSync(path.join(outputs, h.studyInstanceUid, 'r0')).filter((f) => f.endsWith('.hl7')).length, 1);
});

test('an image a worker already died on (e.g. before a restart) is sent alone, before the others', async (t) => {
  const h = await harness({
    images: 3,
    outputsDir: mkdtempSync(path.join(os.tmpdir(), 'pipeline-out-')),
    process: async (request) => request.images.map((i) => writtenResult(i.sopInstanceUid)),
  });
  t.teardown(() => h.store.close());
  const jobId = h.store.listJobs()[0]?.id ?? 0;
  const action = { model: 'tiny', outputs: ['sc'], pacs: ['pacs'], ris: ['ris'], priority: 'normal' };
  h.pipelineStore.routeJob(
    jobId,
    {
      rule: 'chest',
      action: JSON.stringify(action),
      priority: 'normal',
      images: h.pipelineStore.studyInstances(h.studyInstanceUid),
    },
    1,
  );
  const suspect = h.sops[2] as string;
  t.deepEqual([...h.pipelineStore.recordCrash(jobId, [suspect], 2)], [[suspect, 1]]);
  h.pipeline.start();
  t.teardown(() => h.pipeline.stop());
  await waitUntil(() => h.store.listJobs()[0]?.state === 'done', 'the job done');
  t.deepEqual(h.batches, [[suspect], h.sops.filter((s) => s !== suspect).sort()]);
});

// Found by the disk-full reliability run: a pass claimed a job that was waiting for space and not yet due, and with
// the disk full the store refused to give the lease back; the heartbeat, which renewed every lease under the node's
// name, then kept that job from every node (this one too) for as long as the node lived.
test('a lease whose release failed (the disk full) is given back by the next heartbeat, not renewed: the waiting job is done once space is back', async (t) => {
  const { outputs, filler } = fullTmpfs(t);
  const clock = { now: Date.now() };
  let failReleases = 0;
  class ReleaseRefused extends PipelineStore {
    override releaseJob(jobId: number): void {
      if (failReleases > 0) {
        failReleases -= 1;
        throw new Error('database or disk is full');
      }
      super.releaseJob(jobId);
    }
  }
  const h = await harness({
    images: 1,
    outputsDir: outputs,
    process: async (request) => request.images.map((i) => writtenResult(i.sopInstanceUid)),
    pipelineStore: (db, node) => new ReleaseRefused(db, node),
    // A minute's wait (by the injected clock), far less than the hour's lease.
    spaceRetry: { initialMs: 60_000, maxMs: 60_000 },
    now: () => clock.now,
  });
  t.teardown(() => h.store.close());
  h.pipeline.start();
  t.teardown(() => h.pipeline.stop());
  await waitUntil(() => h.lines.some((l) => l.event === 'PIPELINE-4004'), 'the wait for space');
  t.like(h.store.listJobs()[0], { state: 'processing', leaseOwner: null }, 'a job that waits gives its lease back');
  // Another event: the pass claims the waiting job, finds it not due, and its release is refused.
  failReleases = 1;
  h.pipeline.wake();
  await waitUntil(() => failReleases === 0, 'the release refused');
  t.like(h.store.listJobs()[0], { state: 'processing', leaseOwner: 'gw-test' }, 'the lease stayed behind');

  rmSync(filler);
  clock.now += 61_000;
  h.pipeline.heartbeat();
  t.like(
    h.lines.find((l) => l.event === 'PIPELINE-4016'),
    { level: 'warn', node: 'gw-test', released: 1 },
  );
  await waitUntil(
    () => h.store.listJobs()[0]?.state === 'done',
    'the job done after the heartbeat gave its lease back',
  );
  t.like(h.store.listJobs()[0], { leaseOwner: null, lastError: null });
  t.deepEqual(h.delivered.map((d) => d.kind).sort(), ['pacs', 'ris']);
});
