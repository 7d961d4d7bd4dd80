import test from 'ava';
import { formatJobsTable } from '../../src/cli/jobs-table.js';
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
      job({ id: 1, state: 'processing', attempts: 3, lastError: 'waiting for disk space: ENOSPC', nextAttemptAt: Date.UTC(2026, 0, 1) }),
      job({ id: 2, lastError: '1 of 2 image(s) failed: 1.2.3.4: WORKER_CRASHED: the inference worker crashed 3 times on this image' }),
    ],
    [],
  );
  t.regex(text, /#1 {2}processing .*attempts 3 {2}reason: waiting for disk space: ENOSPC {2}next try 2026-01-01T00:00:00\.000Z/);
  t.regex(text, /#2 {2}done .*reason: 1 of 2 image\(s\) failed: 1\.2\.3\.4: WORKER_CRASHED/);
});
