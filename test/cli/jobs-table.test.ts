import test from 'ava';
import { formatJobsTable, jobsListing } from '../../src/cli/jobs-table.js';
import type { JobSummary } from '../../src/store/job-store.js';
import type { Delivery } from '../../src/store/pipeline-store.js';

const job = (over: Partial<JobSummary>): JobSummary => ({
  id: 1,
  studyInstanceUid: '1.2.3',
  revision: 0,
  state: 'done',
  rule: 'chest',
  priority: 'normal',
  finishedAt: 2,
  instanceCount: 2,
  attempts: 1,
  lastError: null,
  nextAttemptAt: null,
  createdAt: 1,
  updatedAt: 2,
  leaseOwner: null,
  ...over,
});

test('a waiting job shows its attempts, why it waits and when it is tried next; a done job with a failed image says so', (t) => {
  const text = formatJobsTable(
    [
      job({
        id: 1,
        state: 'processing',
        attempts: 3,
        lastError: 'NO_SPACE: waiting for disk space: ENOSPC',
        nextAttemptAt: Date.UTC(2026, 0, 1),
      }),
      job({
        id: 2,
        lastError:
          'IMAGES_FAILED: 1 of 2 image(s) failed: 1.2.3.4: WORKER_CRASHED: the inference worker crashed 3 times on this image',
      }),
    ],
    [],
    { total: 7, offset: 0, limit: 2 },
  );
  t.regex(
    text,
    /#1 +processing .*attempts 3 {2}reason: NO_SPACE: waiting for disk space: ENOSPC {2}next try 2026-01-01T00:00:00\.000Z/,
  );
  t.regex(text, /\n2 of 7 job\(s\) \(more with --offset 2\)\n$/);
  t.regex(text, /#2 +done .*reason: IMAGES_FAILED: 1 of 2 image\(s\) failed: 1\.2\.3\.4: WORKER_CRASHED/);
});

test('jobs --json gives each job the catalogue code its stored reason starts with, and null otherwise', (t) => {
  const listing = jobsListing(
    [],
    [
      job({ id: 1, state: 'processing', lastError: 'NO_SPACE: waiting for disk space: ENOSPC' }),
      job({
        id: 2,
        state: 'failed',
        lastError: 'IMAGES_FAILED: 1.2.3.4: PIXELS_CORRUPT: the gateway could not decode this image',
      }),
      job({ id: 3, lastError: null }),
      job({ id: 4, lastError: 'NOT_A_CODE: something' }),
    ],
    [],
  );
  t.deepEqual(
    listing.jobs.map((j) => j.code),
    ['NO_SPACE', 'IMAGES_FAILED', null, null],
  );
});

test('one line per job with its deliveries summed up; only parked deliveries get a line, with the id to act on', (t) => {
  const delivery = (over: Partial<Delivery>): Delivery => ({
    id: 1,
    jobId: 1,
    studyInstanceUid: '1.2.3',
    revision: 0,
    kind: 'pacs',
    destination: 'pacs',
    payload: '{}',
    state: 'delivered',
    attempts: 1,
    attemptsAtRelease: 0,
    nextAttemptAt: 0,
    lastError: null,
    leaseOwner: null,
    ...over,
  });
  const uid = '1.2.826.0.1.3680043.8.498.12345678901234567890';
  const text = formatJobsTable(
    [job({ id: 1, state: 'parked', studyInstanceUid: uid, lastError: 'a delivery was parked' })],
    [
      delivery({ id: 10 }),
      delivery({
        id: 11,
        kind: 'ris',
        destination: 'ris-main',
        state: 'parked',
        attempts: 3,
        lastError: 'application-reject: the RIS answered AR',
      }),
    ],
  );
  const lines = text.trimEnd().split('\n');
  t.is(lines.length, 2);
  t.regex(
    lines[0] ?? '',
    /^#1 +parked +1\.2\.826\.0\.…\d+ +rev 0 +chest +1 delivered, 1 parked +reason: a delivery was parked$/,
  );
  t.regex(
    lines[1] ?? '',
    /^ +ris ris-main: parked {2}delivery 11 {2}attempts 3 {2}last error: application-reject: the RIS answered AR$/,
  );
});

test('the node working on a job or on its deliveries is shown on the job line, and in --json', (t) => {
  const delivery = (over: Partial<Delivery>): Delivery => ({
    id: 1,
    jobId: 2,
    studyInstanceUid: '1.2.3',
    revision: 0,
    kind: 'pacs',
    destination: 'pacs',
    payload: '{}',
    state: 'pending',
    attempts: 0,
    attemptsAtRelease: 0,
    nextAttemptAt: 0,
    lastError: null,
    leaseOwner: null,
    ...over,
  });
  const jobs = [
    job({ id: 1, state: 'processing', leaseOwner: 'gw-analysis-1' }),
    job({ id: 2, state: 'delivering' }),
    job({ id: 3, state: 'done' }),
  ];
  const deliveries = [delivery({ id: 5, leaseOwner: 'gw-deliver' }), delivery({ id: 6, destination: 'ris' })];
  const lines = formatJobsTable(jobs, deliveries).trimEnd().split('\n');
  t.regex(lines[0] ?? '', / {2}node gw-analysis-1/);
  t.regex(lines[1] ?? '', / {2}node gw-deliver$/);
  t.notRegex(lines[2] ?? '', /node/);
  const listing = jobsListing([], jobs, deliveries);
  t.deepEqual(
    listing.jobs.map((j) => j.leaseOwner),
    ['gw-analysis-1', null, null],
  );
  t.deepEqual(
    listing.deliveries.map((d) => d.leaseOwner),
    ['gw-deliver', null],
  );
});
