import test from 'ava';
import { httpStatusOutcome, stowOutcome } from '../../src/export/pacs-dicomweb-destination.js';

// How a STOW-RS answer becomes a delivery outcome, status by status and instance by instance. Orthanc answers
// 200 for all it stores; the partial answers (202 with a Failed SOP Sequence) are built here from PS3.18 10.5.3.

const URL_ = new URL('http://pacs.example/dicom-web/studies');

function failedBody(failures: Array<[string, number]>): string {
  return JSON.stringify({
    '00081198': {
      vr: 'SQ',
      Value: failures.map(([uid, reason]) => ({
        '00081155': { vr: 'UI', Value: [uid] },
        '00081197': { vr: 'US', Value: [reason] },
      })),
    },
  });
}

test('200 with no failures: delivered', (t) => {
  t.deepEqual(stowOutcome({ status: 200, body: '{}' }, ['1.1', '1.2'], [], 2, URL_), { kind: 'delivered' });
});

test('202, one instance out of resources (0xA700): retry pacs-out-of-resources, the reason names it', (t) => {
  const outcome = stowOutcome({ status: 202, body: failedBody([['1.2', 0xa700]]) }, ['1.1', '1.2'], [], 2, URL_);
  t.like(outcome, { kind: 'retry', cause: 'pacs-out-of-resources' });
  t.regex(outcome.kind === 'retry' ? outcome.reason : '', /1 of 2 objects: 1\.2: 0xA700/);
});

test('202, one instance refused for itself (0xC000) and one out of resources: parked pacs-refused-object', (t) => {
  const body = failedBody([
    ['1.1', 0xa700],
    ['1.2', 0xc000],
  ]);
  const outcome = stowOutcome({ status: 202, body }, ['1.1', '1.2'], [], 2, URL_);
  t.like(outcome, { kind: 'parked', cause: 'pacs-refused-object' });
  t.regex(outcome.kind === 'parked' ? outcome.reason : '', /2 of 2 objects/);
});

test('202 whose body we cannot read: retry dicomweb-unreadable-answer; a failure for a UID we did not send is ignored', (t) => {
  t.like(stowOutcome({ status: 202, body: '<NativeDicomModel/>' }, ['1.1'], [], 1, URL_), {
    kind: 'retry',
    cause: 'dicomweb-unreadable-answer',
  });
  t.deepEqual(stowOutcome({ status: 202, body: failedBody([['9.9', 0xc000]]) }, ['1.1'], [], 1, URL_), {
    kind: 'delivered',
  });
});

test('an object we could not send parks the batch even when the server stored the rest', (t) => {
  const outcome = stowOutcome(
    { status: 200, body: '' },
    ['1.1'],
    [{ kind: 'parked', cause: 'invalid-object', detail: 'broken: not DICOM' }],
    2,
    URL_,
  );
  t.like(outcome, { kind: 'parked', cause: 'invalid-object' });
});

test('no answer is its own retry', (t) => {
  t.deepEqual(
    stowOutcome({ failure: { kind: 'retry', cause: 'response-timeout', detail: 'no answer' } }, ['1.1'], [], 1, URL_),
    { kind: 'retry', cause: 'response-timeout', reason: 'no answer' },
  );
});

test('HTTP statuses: 5xx, 408, 429 retry; 401/403, 404/405, 400/409/413/415 park with the status', (t) => {
  for (const status of [500, 502, 503, 504, 408, 429])
    t.like(httpStatusOutcome(status, URL_.href), { kind: 'retry', cause: 'dicomweb-server-error' }, `${status}`);
  for (const status of [401, 403])
    t.like(httpStatusOutcome(status, URL_.href), { kind: 'parked', cause: 'dicomweb-not-authorized' }, `${status}`);
  for (const status of [404, 405])
    t.like(httpStatusOutcome(status, URL_.href), { kind: 'parked', cause: 'dicomweb-not-found' }, `${status}`);
  for (const status of [400, 409, 413, 415]) {
    const outcome = httpStatusOutcome(status, URL_.href);
    t.like(outcome, { kind: 'parked', cause: 'dicomweb-refused' }, `${status}`);
    t.regex(outcome.kind === 'parked' ? outcome.reason : '', new RegExp(`HTTP ${status}`));
  }
  t.like(httpStatusOutcome(302, URL_.href), { kind: 'parked', cause: 'dicomweb-refused' });
});
