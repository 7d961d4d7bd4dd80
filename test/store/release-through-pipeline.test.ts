import test from 'ava';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { configSchema } from '../../src/config/schema.js';
import type { DeliveryOutcome, DeliveryTarget } from '../../src/export/delivery-target.js';
import { createLogger } from '../../src/logging/logger.js';
import { Pipeline } from '../../src/pipeline/pipeline.js';
import { AuditTrail } from '../../src/store/audit-trail.js';
import { ConsoleStore } from '../../src/store/console-store.js';
import { openStore, type StoreLocation } from '../../src/store/open-store.js';
import { PipelineStore } from '../../src/store/pipeline-store.js';
import { queueDeliveryJob } from '../helpers/pipeline-harness.js';
import { ACTOR } from './console-fixtures.js';
import { engineTests } from './engines.js';

const forEachEngine = engineTests(test);

// What the console's release and discard leave in the store is what the real delivery scheduler (Pipeline) sends:
// a RIS that answered AR is released once it answers AA, and the result goes out; nothing parked stays stuck.
// Scripted destinations and an injected clock: each pass is awaited, nothing waits on time.

function harness(
  t: { teardown(fn: () => unknown): void },
  location: StoreLocation,
  answers: { pacs: () => DeliveryOutcome; ris: () => DeliveryOutcome },
  config: Record<string, unknown> = {},
) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'release-pipeline-'));
  const store = openStore(location, 'write').store;
  const pipelineStore = new PipelineStore(store.connection);
  const consoleStore = new ConsoleStore(store.connection, new AuditTrail(store.connection));
  let clock = Date.parse('2026-01-05T08:00:00Z');
  const sink = new Writable({ write: (_c, _e, callback) => callback() });
  const target = (name: string, kind: 'pacs' | 'ris'): DeliveryTarget => ({
    name,
    kind,
    deliver: async () => answers[kind](),
  });
  const pipeline = new Pipeline({
    config: configSchema.parse(config),
    store,
    pipelineStore,
    models: new Map(),
    targets: new Map([
      ['pacs', target('pacs', 'pacs')],
      ['ris', target('ris', 'ris')],
    ]),
    outputsDir: dir,
    logger: createLogger({ level: 'info', format: 'json', stream: sink }),
    now: () => clock,
    random: () => 0.5,
  });
  pipeline.start();
  t.teardown(async () => {
    await pipeline.stop();
    store.close();
  });
  const jobId = queueDeliveryJob(store, pipelineStore, {
    studyInstanceUid: '1.2.826.0.1.77',
    dir,
    clock,
    pacs: ['pacs'],
    ris: ['ris'],
  });
  return {
    store,
    pipelineStore,
    consoleStore,
    pipeline,
    jobId,
    tick: (ms: number) => (clock += ms),
    now: () => clock,
    job: () => store.listJobs().find((j) => j.id === jobId),
    delivery: (kind: 'pacs' | 'ris') => pipelineStore.deliveries(jobId).find((d) => d.kind === kind),
  };
}

const AR: DeliveryOutcome = { kind: 'parked', cause: 'application-reject', reason: 'the RIS answered AR' };

forEachEngine(
  'a report the RIS refused (AR) is parked; released once the RIS answers AA, it is delivered and the job is done',
  async (t, location) => {
    let ris: DeliveryOutcome = AR;
    const h = harness(t, location, { pacs: () => ({ kind: 'delivered' }), ris: () => ris });
    await h.pipeline.deliverDueNow();
    await h.pipeline.deliverDueNow();
    t.like(h.delivery('ris'), { state: 'parked', attempts: 1 });
    t.like(h.job(), { state: 'parked' });
    await h.pipeline.deliverDueNow();
    t.like(h.delivery('ris'), { state: 'parked' }, 'a restart or another pass does not retry it by itself');

    ris = { kind: 'delivered' };
    h.tick(60_000);
    const [released] = h.consoleStore.releaseDelivery(h.delivery('ris')?.id ?? -1, ACTOR, h.now());
    t.like(released, { state: 'pending', nextAttemptAt: h.now() });
    await h.pipeline.deliverDueNow();
    t.like(h.delivery('ris'), { state: 'delivered', attempts: 2 });
    t.like(h.job(), { state: 'done', lastError: null });
    const story = h.consoleStore.studyRows('1.2.826.0.1.77')?.jobs[0]?.deliveries.find((d) => d.kind === 'ris');
    t.deepEqual(
      story?.history.map((a) => [a.attempt, a.outcome]),
      [
        [1, 'parked'],
        [1, 'released'],
        [2, 'delivered'],
      ],
    );
  },
);

forEachEngine(
  'a PACS refusal parks the report with it; releasing the PACS delivery sends both, in order',
  async (t, location) => {
    let pacs: DeliveryOutcome = { kind: 'parked', cause: 'pacs-refused-object', reason: '0xA900' };
    const sent: string[] = [];
    const h = harness(t, location, {
      pacs: () => {
        sent.push('pacs');
        return pacs;
      },
      ris: () => {
        sent.push('ris');
        return { kind: 'delivered' };
      },
    });
    await h.pipeline.deliverDueNow();
    t.like(h.delivery('ris'), { state: 'parked' });
    pacs = { kind: 'delivered' };
    h.consoleStore.releaseDelivery(h.delivery('pacs')?.id ?? -1, ACTOR, h.now());
    await h.pipeline.deliverDueNow();
    await h.pipeline.deliverDueNow();
    t.deepEqual(sent, ['pacs', 'pacs', 'ris']);
    t.like(h.job(), { state: 'done' });
  },
);

forEachEngine(
  'discarding the refused PACS delivery and releasing its report sends the report alone; the job is done',
  async (t, location) => {
    const sent: string[] = [];
    const h = harness(t, location, {
      pacs: () => {
        sent.push('pacs');
        return { kind: 'parked', cause: 'pacs-refused-object', reason: '0xA900' };
      },
      ris: () => {
        sent.push('ris');
        return { kind: 'delivered' };
      },
    });
    await h.pipeline.deliverDueNow();
    h.consoleStore.discardDelivery(
      h.delivery('pacs')?.id ?? -1,
      'images sent from the modality by hand',
      ACTOR,
      h.now(),
    );
    t.like(h.job(), { state: 'parked' }, 'the report still waits for a decision');
    h.consoleStore.releaseDelivery(h.delivery('ris')?.id ?? -1, ACTOR, h.now());
    await h.pipeline.deliverDueNow();
    t.deepEqual(sent, ['pacs', 'ris']);
    t.like(h.delivery('pacs'), { state: 'discarded' });
    t.like(h.job(), { state: 'done' });
  },
);

forEachEngine(
  'a delivery parked after its retry budget gets the whole budget again when released (not one try)',
  async (t, location) => {
    // An outage that outlasted delivery.transientMaxAttempts (2 here): parked. Released while the RIS is still down,
    // it is retried twice again before it parks; `attempts` keeps counting every try.
    const down: DeliveryOutcome = { kind: 'retry', cause: 'connection-refused', reason: 'nothing listens' };
    const h = harness(
      t,
      location,
      { pacs: () => ({ kind: 'delivered' }), ris: () => down },
      { delivery: { transientMaxAttempts: 2 } },
    );
    const pass = async () => {
      h.tick(3_600_000);
      await h.pipeline.deliverDueNow();
    };
    await pass();
    await pass();
    t.like(h.delivery('ris'), { state: 'parked', attempts: 2 });
    h.consoleStore.releaseDelivery(h.delivery('ris')?.id ?? -1, ACTOR, h.now());
    await pass();
    t.like(
      h.delivery('ris'),
      { state: 'pending', attempts: 3 },
      'the first try after the release is a retry, not a park',
    );
    await pass();
    t.like(h.delivery('ris'), { state: 'parked', attempts: 4 });
  },
);
