// A real job store (SQLite file) filled through JobStore and PipelineStore as the daemon fills it, for the console
// store, audit and CLI tests: studies from given AEs with accession numbers, routed, written and queued for delivery.
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AuditTrail } from '../../src/store/audit-trail.js';
import { ConsoleStore } from '../../src/store/console-store.js';
import { JobStore } from '../../src/store/job-store.js';
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

/** A fixture on a new store file in a temporary folder, or on `options.file` (e.g. the one a config names). */
export function consoleFixture(prefix = 'console-store-', options: { file?: string } = {}): ConsoleFixture {
  const file = options.file ?? path.join(mkdtempSync(path.join(os.tmpdir(), prefix)), 'jobs.sqlite');
  const store = JobStore.open(file);
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
    dump() {
      const tables = (
        db.prepare(`SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name`).all() as Array<{ name: string }>
      ).map((r) => r.name);
      return JSON.stringify(tables.map((name) => [name, db.prepare(`SELECT * FROM "${name}" ORDER BY rowid`).all()]));
    },
  };
}

/** Records one delivery outcome as the pipeline does. */
export function deliver(f: ConsoleFixture, id: number, result: DeliveryResult, at: number): void {
  f.pipeline.recordDelivery(id, result, at);
}
