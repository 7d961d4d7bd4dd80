// A real job store (SQLite file) filled through JobStore and PipelineStore as the daemon fills it, for the console
// store, audit and CLI tests: studies from given AEs with accession numbers, routed, written and queued for delivery.
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AuditTrail } from '../../src/store/audit-trail.js';
import { ConsoleStore } from '../../src/store/console-store.js';
import type { JobStore } from '../../src/store/job-store.js';
import { openStore, type StoreLocation } from '../../src/store/open-store.js';
import { PipelineStore, type DeliveryResult } from '../../src/store/pipeline-store.js';

export interface ConsoleFixture {
  file: string;
  store: JobStore;
  pipeline: PipelineStore;
  audit: AuditTrail;
  console: ConsoleStore;
  /** A study received from `ae` with `accession`, routed by rule 'chest', one image written, deliveries queued. */
  study(options: StudyOptions): { jobId: number; deliveries: Record<string, number> };
  /** Every row of every table, for 'nothing changed' comparisons. */
  dump(): string;
}

export interface StudyOptions {
  uid: string;
  ae?: string;
  accession?: string;
  at: number;
  pacs?: string[];
  ris?: string[];
  /** Stop after routing (job processing) rather than queueing deliveries. */
  processingOnly?: boolean;
}

export const ACTOR = { user: 'alice', role: 'admin', address: '10.0.0.7' };

/**
 * A fixture on a new store file in a temporary folder, on `options.file` (e.g. the one a config names), or on
 * `options.location` (either engine, see engines.ts); `file` is then where the store is.
 */
export function consoleFixture(
  prefix = 'console-store-',
  options: { file?: string; location?: StoreLocation } = {},
): ConsoleFixture {
  const location: StoreLocation = options.location ?? {
    engine: 'sqlite',
    file: options.file ?? path.join(mkdtempSync(path.join(os.tmpdir(), prefix)), 'jobs.sqlite'),
  };
  const opened = openStore(location, 'write');
  const file = opened.where;
  const store = opened.store;
  const db = store.connection;
  const pipeline = new PipelineStore(db);
  const audit = new AuditTrail(db);
  const consoleStore = new ConsoleStore(db, audit);
  return {
    file,
    store,
    pipeline,
    audit,
    console: consoleStore,
    study(o) {
      const sop = `${o.uid}.1`;
      store.recordInstance({
        sopInstanceUid: sop,
        sopClassUid: '1.2.840.10008.5.1.4.1.1.1.1',
        studyInstanceUid: o.uid,
        seriesInstanceUid: `${o.uid}.9`,
        transferSyntaxUid: '1.2.840.10008.1.2.1',
        path: `/spool/${o.uid}/${sop}.dcm`,
        sizeBytes: 100,
        callingAe: o.ae ?? 'DX1',
        calledAe: 'CXR_GATEWAY',
        sourceIp: '10.1.1.1',
        associationId: 'a1',
        attributes: {
          modality: 'DX',
          viewPosition: 'PA',
          studyDate: '20261206',
          ...(o.accession === undefined ? {} : { accessionNumber: o.accession }),
        },
        receivedAt: o.at,
      });
      const [ready] = store.promoteQuietStudies(o.at, o.at);
      if (ready === undefined) throw new Error(`study ${o.uid} did not become ready`);
      const pacs = o.pacs ?? ['pacs'];
      const ris = o.ris ?? ['ris'];
      pipeline.routeJob(
        ready.jobId,
        {
          rule: 'chest',
          action: JSON.stringify({ model: 'tiny', outputs: ['sc'], pacs, ris, priority: 'normal' }),
          priority: 'normal',
          images: [{ sopInstanceUid: sop, path: `/spool/${o.uid}/${sop}.dcm` }],
        },
        o.at,
      );
      if (o.processingOnly === true) return { jobId: ready.jobId, deliveries: {} };
      pipeline.recordImage(
        ready.jobId,
        sop,
        { state: 'written', result: JSON.stringify({ classification: { predicted: 'abnormal' } }) },
        o.at,
      );
      pipeline.finishProcessing(
        ready.jobId,
        {
          deliveries: [
            ...pacs.map((destination) => ({
              kind: 'pacs' as const,
              destination,
              payload: JSON.stringify({ kind: 'pacs', files: [] }),
            })),
            ...ris.map((destination) => ({
              kind: 'ris' as const,
              destination,
              payload: JSON.stringify({ kind: 'ris', file: '/x.hl7', controlId: 'C1' }),
            })),
          ],
        },
        o.at,
      );
      const deliveries = Object.fromEntries(
        pipeline.deliveries(ready.jobId).map((d) => [`${d.kind}:${d.destination}`, d.id]),
      );
      return { jobId: ready.jobId, deliveries };
    },
    // Every table's rows, for "nothing changed" comparisons on either engine: the catalogue differs, and rows are
    // compared as a sorted set (PostgreSQL has no rowid, and a set is what "unchanged" means).
    dump() {
      const tables = (
        db
          .prepare(
            db.dialect === 'sqlite'
              ? `SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name`
              : `SELECT table_name AS name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY name`,
          )
          .all() as Array<{ name: string }>
      ).map((r) => r.name);
      return JSON.stringify(
        tables.map((name) => [
          name,
          db
            .prepare(`SELECT * FROM "${name}"`)
            .all()
            .map((row) => JSON.stringify(row))
            .sort(),
        ]),
      );
    },
  };
}

/** Records one delivery outcome as the pipeline does. */
export function deliver(f: ConsoleFixture, id: number, result: DeliveryResult, at: number): void {
  f.pipeline.recordDelivery(id, result, at);
}
