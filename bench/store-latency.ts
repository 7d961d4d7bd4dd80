// The added latency of PostgreSQL over SQLite per received instance (issue 20).
//
//   node dist/bench/store-latency.js [--studies 100] [--per-study 3] [--rounds 2] [--warmup 20] [--json]
//
// What a received instance costs the store, on each engine in one invocation: JobStore.recordInstance (the row a
// C-STORE Success waits for: one transaction) per instance, and per study the assembly's promoteQuietStudies plus
// the pipeline's routeJob (two more transactions). SQLite is the reference: a file with WAL and synchronous=FULL,
// as the daemon opens it. PostgreSQL is a cluster this benchmark starts on the same disk with fsync,
// synchronous_commit and full_page_writes on (production-like), reached over loopback TCP through the store's
// synchronous bridge (a worker thread, Atomics.wait). A remote server adds its network round trip to every
// statement on top of these figures. Engines alternate, and the order flips every round; every round uses a new
// file / database, and the first --warmup instances of each are not counted.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { openStore, type StoreLocation } from '../src/store/open-store.js';
import { PipelineStore } from '../src/store/pipeline-store.js';
import type { ReceivedInstance } from '../src/store/job-store.js';
import { startPostgres } from '../test/helpers/postgres.js';

type Engine = 'sqlite' | 'postgres';

function option(name: string, fallback: number): number {
  const at = process.argv.indexOf(`--${name}`);
  if (at < 0) return fallback;
  const value = Number(process.argv[at + 1]);
  if (!Number.isInteger(value) || value < 0) throw new Error(`--${name} takes a whole number`);
  return value;
}

const studies = option('studies', 100);
const perStudy = option('per-study', 3);
const rounds = option('rounds', 2);
const warmup = option('warmup', 20);
const json = process.argv.includes('--json');

function instance(study: string, sop: string, at: number): ReceivedInstance {
  return {
    sopInstanceUid: sop,
    sopClassUid: '1.2.840.10008.5.1.4.1.1.1.1',
    studyInstanceUid: study,
    seriesInstanceUid: `${study}.1`,
    transferSyntaxUid: '1.2.840.10008.1.2.1',
    path: `/spool/studies/${study}/${sop}.dcm`,
    sizeBytes: 8_400_000,
    callingAe: 'DX1',
    calledAe: 'CXR_GATEWAY',
    sourceIp: '10.0.0.5',
    associationId: `assoc-${study}`,
    attributes: { modality: 'DX', viewPosition: 'PA', accessionNumber: `ACC${study.slice(-6)}`, studyDate: '20261206' },
    receivedAt: at,
  };
}

interface Samples {
  record: number[];
  promoteRoute: number[];
}

/** One round on one engine: studies x perStudy instances, each study promoted and routed once complete. */
function runRound(location: StoreLocation, round: number): Samples {
  const { store } = openStore(location, 'write');
  const pipeline = new PipelineStore(store.connection);
  const samples: Samples = { record: [], promoteRoute: [] };
  let counted = 0;
  try {
    for (let s = 0; s < studies; s += 1) {
      const study = `1.2.826.0.1.3680043.10.99.${round}.${s + 1}`;
      const images: Array<{ sopInstanceUid: string; path: string }> = [];
      for (let i = 0; i < perStudy; i += 1) {
        const sop = `${study}.${i + 1}`;
        const received = instance(study, sop, 1_000_000 + s * 10 + i);
        const started = performance.now();
        store.recordInstance(received);
        const took = performance.now() - started;
        images.push({ sopInstanceUid: sop, path: received.path });
        counted += 1;
        if (counted > warmup) samples.record.push(took);
      }
      const started = performance.now();
      const ready = store.promoteQuietStudies(Number.MAX_SAFE_INTEGER, 2_000_000 + s);
      for (const r of ready) {
        pipeline.routeJob(
          r.jobId,
          { rule: 'chest', action: '{"model":"demo"}', priority: 'normal', images },
          2_000_000 + s,
        );
      }
      const took = performance.now() - started;
      if (counted > warmup) samples.promoteRoute.push(took);
    }
  } finally {
    store.close();
  }
  return samples;
}

function quantile(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number;
}

async function main(): Promise<void> {
  const work = mkdtempSync(path.join(os.tmpdir(), 'cxr-store-latency-'));
  const cluster = await startPostgres({ durable: true });
  const all: Record<Engine, Samples> = {
    sqlite: { record: [], promoteRoute: [] },
    postgres: { record: [], promoteRoute: [] },
  };
  try {
    for (let round = 0; round < rounds; round += 1) {
      const order: Engine[] = round % 2 === 0 ? ['sqlite', 'postgres'] : ['postgres', 'sqlite'];
      for (const engine of order) {
        const location: StoreLocation =
          engine === 'sqlite'
            ? { engine, file: path.join(work, `round-${round}`, 'jobs.sqlite') }
            : { engine, url: await cluster.createDatabase(), statementTimeoutMs: 30_000, connectTimeoutMs: 10_000 };
        const samples = runRound(location, round);
        all[engine].record.push(...samples.record);
        all[engine].promoteRoute.push(...samples.promoteRoute);
      }
    }
  } finally {
    await cluster.stop();
    rmSync(work, { recursive: true, force: true });
  }
  const summary = (Object.keys(all) as Engine[]).map((engine) => ({
    engine,
    instances: all[engine].record.length,
    recordMedianMs: quantile(all[engine].record, 0.5),
    recordP95Ms: quantile(all[engine].record, 0.95),
    promoteRouteMedianMs: quantile(all[engine].promoteRoute, 0.5),
    promoteRouteP95Ms: quantile(all[engine].promoteRoute, 0.95),
  }));
  const [sqlite, postgres] = summary as [(typeof summary)[0], (typeof summary)[0]];
  const perInstance = (s: (typeof summary)[0]) => s.recordMedianMs + s.promoteRouteMedianMs / perStudy;
  const result = {
    settings: { studies, perStudy, rounds, warmup, cpus: os.cpus().length, node: process.version },
    summary,
    recordRatio: postgres.recordMedianMs / sqlite.recordMedianMs,
    addedMsPerInstance: perInstance(postgres) - perInstance(sqlite),
  };
  if (json) {
    console.log(JSON.stringify(result, null, 2));
    return;
  }
  const f = (n: number) => n.toFixed(2).padStart(8);
  console.log(`store latency per received instance (${studies} studies x ${perStudy} instances, ${rounds} rounds)`);
  console.log('engine      instances  record med   record p95  promote+route med  promote+route p95   (ms)');
  for (const s of summary) {
    console.log(
      `${s.engine.padEnd(10)} ${String(s.instances).padStart(10)} ${f(s.recordMedianMs)}    ${f(s.recordP95Ms)}` +
        `          ${f(s.promoteRouteMedianMs)}          ${f(s.promoteRouteP95Ms)}`,
    );
  }
  console.log(`recordInstance median ratio postgres / sqlite: ${result.recordRatio.toFixed(2)}`);
  console.log(
    `added by PostgreSQL per received instance (record + promote/route share): ${result.addedMsPerInstance.toFixed(2)} ms`,
  );
}

await main();
