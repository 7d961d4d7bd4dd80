import test from 'ava';
import { formatJobsTable, jobsListing } from '../../src/cli/jobs-table.js';
import type { JobSummary } from '../../src/store/job-store.js';

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
  ...over,
});

test('a waiting job shows its attempts, why it waits and when it is tried next; a done job with a failed image says so', (t) => {
  const text = formatJobsTable(
    [],
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
  );
  t.regex(
    text,
    /#1 {2}processing .*attempts 3 {2}reason: NO_SPACE: waiting for disk space: ENOSPC {2}next try 2026-01-01T00:00:00\.000Z/,
  );
  t.regex(text, /#2 {2}done .*reason: IMAGES_FAILED: 1 of 2 image\(s\) failed: 1\.2\.3\.4: WORKER_CRASHED/);
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
