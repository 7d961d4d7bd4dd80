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

// Pipeline.stop(deadline) with an injected clock and scripted destinations: a delivery that finishes before the
// deadline is recorded as delivered; one still waiting at the deadline gets its AbortSignal, ends as a `stopped`
// retry, stays pending and is due again at once (sent first after restart). Each waits for a positive event.

const START = Date.parse('2026-01-05T08:00:00Z');

function setup(t: { teardown(fn: () => unknown): void }, target: DeliveryTarget) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pipeline-stop-'));
  const store = JobStore.open(path.join(dir, 'db.sqlite'));
  t.teardown(() => store.close());
  const pipelineStore = new PipelineStore(store.connection);
  const logs: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString().split('\n'))
        if (line.trim() !== '') logs.push(JSON.parse(line) as Record<string, unknown>);
      callback();
    },
  });
  const clock = START;
  const jobId = queueDeliveryJob(store, pipelineStore, { studyInstanceUid: '1.2.3', dir, clock, pacs: [target.name] });
  const pipeline = new Pipeline({
    config: configSchema.parse({}),
    store,
    pipelineStore,
    models: new Map(),
    targets: new Map([[target.name, target]]),
    outputsDir: dir,
    logger: createLogger({ level: 'info', format: 'json', stream }),
    now: () => clock,
    random: () => 0.5,
  });
  return { pipeline, pipelineStore, logs, jobId };
}

/** A destination whose delivery starts (resolving `started`) and then waits for `finish` or for its signal. */
function gatedTarget() {
  let started!: () => void;
  const startedP = new Promise<void>((resolve) => (started = resolve));
  let finish!: (outcome: DeliveryOutcome) => void;
  const signals: Array<AbortSignal | undefined> = [];
  const target: DeliveryTarget = {
    name: 'pacs',
    kind: 'pacs',
    deliver: (_payload, signal) =>
      new Promise<DeliveryOutcome>((resolve) => {
        signals.push(signal);
        finish = resolve;
        signal?.addEventListener(
          'abort',
          () =>
            resolve({
              kind: 'retry',
              cause: 'stopped',
              reason: 'aborted by the shutdown deadline',
            }),
          { once: true },
        );
        started();
      }),
  };
  return {
    target,
    started: startedP,
    finish: (o: DeliveryOutcome) => finish(o),
    signals,
  };
}

test('stop(deadline): a delivery that finishes before the deadline is recorded as delivered, and its signal never fires', async (t) => {
  const gate = gatedTarget();
  const { pipeline, pipelineStore, jobId } = setup(t, gate.target);
  await pipeline.start();
  await gate.started;
  const stopping = pipeline.stop(START + 60_000);
  t.is(pipeline.status().state, 'stopping');
  gate.finish({ kind: 'delivered' });
  await stopping;
  t.is(pipeline.status().state, 'stopped');
  t.like(pipelineStore.deliveries(jobId)[0], { state: 'delivered' });
  t.false(gate.signals[0]?.aborted ?? true);
});

test('stop(deadline): a delivery still waiting at the deadline is aborted through its signal and stays pending, due again at once', async (t) => {
  const gate = gatedTarget();
  const { pipeline, pipelineStore, logs, jobId } = setup(t, gate.target);
  await pipeline.start();
  await gate.started;
  // The injected clock stands still: the deadline is 30 ms of real time ahead of it.
  await pipeline.stop(START + 30);
  t.true(gate.signals[0]?.aborted);
  const [delivery] = pipelineStore.deliveries(jobId);
  t.like(delivery, { state: 'pending', attempts: 1, nextAttemptAt: START });
  t.regex(delivery?.lastError ?? '', /^stopped: /);
  t.truthy(logs.find((l) => l.event === 'PIPELINE-4009'));
  t.is(pipeline.status().state, 'stopped');
});

test('stop(deadline) with the deadline already past aborts at once', async (t) => {
  const gate = gatedTarget();
  const { pipeline, pipelineStore, jobId } = setup(t, gate.target);
  await pipeline.start();
  await gate.started;
  await pipeline.stop(START - 1);
  t.true(gate.signals[0]?.aborted);
  t.like(pipelineStore.deliveries(jobId)[0], { state: 'pending' });
});
