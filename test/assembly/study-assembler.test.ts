import test from 'ava';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { StudyAssembler } from '../../src/assembly/study-assembler.js';
import { createLogger } from '../../src/logging/logger.js';
import { JobStore } from '../../src/store/job-store.js';

// The assembler's lifecycle, with an injected clock: start() promotes what is already quiet, stop(deadline) ends
// the sweeps (a study not yet quiet stays `receiving` in the store, promoted after restart); status() says which.

const T0 = Date.parse('2026-01-05T08:00:00Z');

test('start promotes a quiet study at once; after stop(deadline) nothing is promoted and the state is stopped', async (t) => {
  const store = JobStore.open(path.join(mkdtempSync(path.join(os.tmpdir(), 'assembler-')), 'db.sqlite'));
  t.teardown(() => store.close());
  const instance = (studyInstanceUid: string, receivedAt: number) =>
    store.recordInstance({
      sopInstanceUid: `${studyInstanceUid}.1`,
      sopClassUid: '1.2.840.10008.5.1.4.1.1.1.1',
      studyInstanceUid,
      seriesInstanceUid: `${studyInstanceUid}.9`,
      transferSyntaxUid: '1.2.840.10008.1.2.1',
      path: '/dev/null',
      sizeBytes: 1,
      callingAe: 'DX1',
      calledAe: 'CXR_GATEWAY',
      sourceIp: '127.0.0.1',
      associationId: 'a1',
      attributes: { modality: 'DX' },
      receivedAt,
    });
  instance('1.2.3.1', T0 - 10_000);
  let clock = T0;
  const ready: string[] = [];
  const assembler = new StudyAssembler({
    store,
    quietPeriodMs: 5_000,
    logger: createLogger({ level: 'error', format: 'json', stream: new PassThrough() }),
    onReady: (study) => ready.push(study.studyInstanceUid),
    now: () => clock,
  });
  t.is(assembler.status().state, 'starting');
  await assembler.start();
  t.is(assembler.status().state, 'running');
  t.deepEqual(ready, ['1.2.3.1']);

  instance('1.2.3.2', T0);
  await assembler.stop(T0 + 1_000);
  t.is(assembler.status().state, 'stopped');
  clock = T0 + 60_000;
  // Quiet now, but the assembler is stopped: the study waits in the store for the next start.
  t.is(store.countStudies('receiving'), 1);
  t.deepEqual(ready, ['1.2.3.1']);
});
