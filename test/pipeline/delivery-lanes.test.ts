import test from 'ava';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { configSchema } from '../../src/config/schema.js';
import type { DeliveryOutcome, DeliveryTarget } from '../../src/export/delivery-target.js';
import { createLogger } from '../../src/logging/logger.js';
import { Pipeline } from '../../src/pipeline/pipeline.js';
import { JobStore } from '../../src/store/job-store.js';
import { PipelineStore } from '../../src/store/pipeline-store.js';
import { queueDeliveryJob } from '../helpers/pipeline-harness.js';

// One delivery lane per destination: a PACS that takes its time (a slow link, a storage commitment report that
// is late) holds its own deliveries only. Another destination's deliveries go on meanwhile; the study's RIS report
// still waits for every PACS delivery of the study, and the slow destination never gets two deliveries at once.
// Scripted destinations and an injected clock; every wait is for a positive event.

const START = Date.parse('2026-01-05T08:00:00Z');

function deferred<T>() {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

test('a slow PACS holds only its own deliveries: the other PACS gets both studies meanwhile; the RIS waits for both PACS', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'delivery-lanes-'));
  const store = JobStore.open(path.join(dir, 'db.sqlite'));
  t.teardown(() => store.close());
  const pipelineStore = new PipelineStore(store.connection);
  // Waits on what the pipeline recorded (its log lines come after the store's update), not on the targets' calls.
  const waiters: Array<{ done: (l: Array<Record<string, unknown>>) => boolean; resolve: () => void }> = [];
  const logs: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString().split('\n'))
        if (line.trim() !== '') logs.push(JSON.parse(line) as Record<string, unknown>);
      for (const w of waiters.splice(0)) (w.done(logs) ? w.resolve : () => waiters.push(w))();
      callback();
    },
  });
  const recorded = (event: string, destination: string, count: number) =>
    new Promise<void>((resolve) => {
      const done = (l: Array<Record<string, unknown>>) =>
        l.filter((x) => x.event === event && x.destination === destination).length >= count;
      if (done(logs)) resolve();
      else waiters.push({ done, resolve });
    });

  const slowCalls: Array<{ finish: (o: DeliveryOutcome) => void }> = [];
  const slowStarted = deferred<void>();
  const slow: DeliveryTarget = {
    name: 'slow-pacs',
    kind: 'pacs',
    deliver: () =>
      new Promise<DeliveryOutcome>((resolve) => {
        slowCalls.push({ finish: resolve });
        slowStarted.resolve();
      }),
  };
  const fast: DeliveryTarget = { name: 'fast-pacs', kind: 'pacs', deliver: async () => ({ kind: 'delivered' }) };
  const risSent: string[] = [];
  const ris: DeliveryTarget = {
    name: 'ris',
    kind: 'ris',
    deliver: async (payload) => {
      risSent.push(JSON.stringify(payload));
      return { kind: 'delivered' };
    },
  };

  const clock = START;
  const first = queueDeliveryJob(store, pipelineStore, {
    studyInstanceUid: '1.2.3.1',
    dir,
    clock,
    pacs: ['slow-pacs', 'fast-pacs'],
    ris: ['ris'],
  });
  const second = queueDeliveryJob(store, pipelineStore, {
    studyInstanceUid: '1.2.3.2',
    dir,
    clock,
    pacs: ['slow-pacs', 'fast-pacs'],
  });
  const pipeline = new Pipeline({
    config: configSchema.parse({}),
    store,
    pipelineStore,
    models: new Map(),
    targets: new Map([
      [slow.name, slow],
      [fast.name, fast],
      [ris.name, ris],
    ]),
    outputsDir: dir,
    logger: createLogger({ level: 'info', format: 'json', stream }),
    now: () => clock,
    random: () => 0.5,
  });
  // A failed assertion ends the test: let the slow PACS answer so that stop() has nothing left waiting.
  t.teardown(async () => {
    for (const call of slowCalls) call.finish({ kind: 'retry', cause: 'stopped', reason: 'test over' });
    await pipeline.stop(START - 1);
  });
  await pipeline.start();

  await slowStarted.promise;
  await recorded('EXPORT-6001', 'fast-pacs', 2);
  // The fast PACS has both studies while the slow one is still busy with its first.
  t.is(slowCalls.length, 1, 'the slow PACS is given one delivery at a time');
  const state = (jobId: number, destination: string) =>
    pipelineStore.deliveries(jobId).find((d) => d.destination === destination)?.state;
  t.is(state(first, 'fast-pacs'), 'delivered');
  t.is(state(second, 'fast-pacs'), 'delivered');
  t.is(state(first, 'slow-pacs'), 'pending');
  t.is(state(first, 'ris'), 'pending');
  t.deepEqual(risSent, [], 'the RIS report waits for every PACS delivery of its study');

  // The slow PACS answers: the first study's report goes out, and the slow PACS gets the second study.
  slowCalls[0]?.finish({ kind: 'delivered' });
  await recorded('EXPORT-6002', 'ris', 1);
  t.is(state(first, 'slow-pacs'), 'delivered');
  t.is(risSent.length, 1);
  // The lane that finished took the slow PACS's next delivery at once.
  t.is(slowCalls.length, 2);
  slowCalls[1]?.finish({ kind: 'delivered' });
  await recorded('EXPORT-6001', 'slow-pacs', 2);
  t.is(state(second, 'slow-pacs'), 'delivered');
});
