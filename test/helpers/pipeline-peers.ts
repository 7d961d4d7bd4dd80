// Test helper for the end-to-end specifications with real peers: the daemon (a child process) delivering to a
// real Orthanc (PACS, type dicom) and the python3-hl7 MLLP listener (RIS, type mllp). Config building, a read-only
// look into the daemon's SQLite store, Orthanc's view of a study, and the fields of an ORU as python-hl7 parsed it.

import Database from 'better-sqlite3';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Hl7Listener, ReceivedMessage } from './hl7-listener.js';
import type { ConfigOverrides, LogLine } from './gateway-process.js';
import type { LogEvent } from '../../src/logging/log-events.js';
import type { OrthancUnderTest } from './orthanc.js';
import { tinyModelDir } from './tiny-densenet.js';

export const SECONDARY_CAPTURE = '1.2.840.10008.5.1.4.1.1.7';
export const PACS_NAME = 'orthanc';
export const RIS_NAME = 'ris';

export interface PeerConfigOptions {
  /** The PACS's DICOM port (Orthanc's, or one nobody listens on). */
  pacsPort: number;
  pacsAeTitle?: string;
  risPort: number;
  /** How long the gateway waits for an ACK (a silent RIS makes the delivery a retry after this). Default 2. */
  ackTimeoutSeconds?: number;
  delivery?: { maxAttempts?: number; initialBackoffSeconds?: number; maxBackoffSeconds?: number };
  /** Routing rules; default: every CR/DX study to the PACS and the RIS. */
  rules?: unknown[];
  outputs?: Array<'sc' | 'sr'>;
}

/** The action every test rule uses: the tiny model, the SC (and SR), PACS then RIS. */
export function processAction(outputs: Array<'sc' | 'sr'> = ['sc'], priority: 'normal' | 'urgent' = 'normal') {
  return { model: 'tiny', outputs, pacs: [PACS_NAME], ris: [RIS_NAME], priority };
}

/**
 * Overrides for startGateway: the tiny model on one wasm worker, Orthanc as the PACS, the listener as the RIS, a
 * quick retry policy (0.2 s, doubling up to 1 s) so outages are over in seconds.
 */
export function peerConfig(options: PeerConfigOptions): ConfigOverrides {
  return {
    models: { tiny: tinyModelDir() },
    inference: { defaultModel: 'tiny', workers: 1, backend: 'wasm' },
    destinations: {
      pacs: [
        {
          type: 'dicom',
          name: PACS_NAME,
          host: '127.0.0.1',
          port: options.pacsPort,
          aeTitle: options.pacsAeTitle ?? 'ORTHANC',
          connectTimeoutSeconds: 3,
          responseTimeoutSeconds: 10,
        },
      ],
      ris: [
        {
          type: 'mllp',
          name: RIS_NAME,
          host: '127.0.0.1',
          port: options.risPort,
          sendingApplication: 'CXR_GATEWAY',
          sendingFacility: 'RADIOLOGY',
          receivingApplication: 'RIS',
          receivingFacility: 'HOSPITAL',
          connectTimeoutSeconds: 3,
          ackTimeoutSeconds: options.ackTimeoutSeconds ?? 2,
        },
      ],
    } as unknown as Record<string, unknown>,
    rules: (options.rules ?? [
      {
        name: 'chest',
        match: { attributes: { Modality: { oneOf: ['CR', 'DX'] } } },
        action: processAction(options.outputs),
      },
    ]) as unknown as Record<string, unknown>,
    delivery: { maxAttempts: 50, initialBackoffSeconds: 0.2, maxBackoffSeconds: 1, ...(options.delivery ?? {}) },
  };
}

export function inputDir(): string {
  return mkdtempSync(path.join(os.tmpdir(), 'peers-in-'));
}

// ---------------------------------------------------------------------------------------------------------------
// The daemon's store, read-only (the daemon may be running: WAL lets us read beside it)

export interface JobRow {
  id: number;
  study_instance_uid: string;
  revision: number;
  state: string;
  rule: string | null;
  priority: string;
  last_error: string | null;
  created_at: number;
  finished_at: number | null;
}

export interface DeliveryRow {
  id: number;
  job_id: number;
  kind: 'pacs' | 'ris';
  destination: string;
  payload: string;
  state: string;
  attempts: number;
  last_error: string | null;
  updated_at: number;
}

export interface WrittenResult {
  sopInstanceUid: string;
  classification: { predicted: string; classes: string[]; probabilities: number[] };
  outputs: Array<{ kind: 'sc' | 'sr'; sopInstanceUid: string; sopClassUid: string; seriesInstanceUid: string }>;
}

export function storeFile(workDir: string): string {
  return path.join(workDir, 'data', 'db', 'cxr-gateway.sqlite');
}

/** Runs `fn` on a fresh read-only connection (closed afterwards, so nothing is held across a daemon restart). */
export function withStore<T>(workDir: string, fn: (db: Database.Database) => T): T {
  const db = new Database(storeFile(workDir), { readonly: true, fileMustExist: true });
  try {
    return fn(db);
  } finally {
    db.close();
  }
}

export function jobsOfStudy(workDir: string, studyInstanceUid: string): JobRow[] {
  return withStore(
    workDir,
    (db) => db.prepare('SELECT * FROM jobs WHERE study_instance_uid = ? ORDER BY id').all(studyInstanceUid) as JobRow[],
  );
}

export function deliveriesOfJob(workDir: string, jobId: number): DeliveryRow[] {
  return withStore(
    workDir,
    (db) => db.prepare('SELECT * FROM deliveries WHERE job_id = ? ORDER BY id').all(jobId) as DeliveryRow[],
  );
}

export function studyState(workDir: string, studyInstanceUid: string): string | undefined {
  return withStore(
    workDir,
    (db) =>
      (
        db.prepare('SELECT state FROM studies WHERE study_instance_uid = ?').get(studyInstanceUid) as
          { state: string } | undefined
      )?.state,
  );
}

/** The written image results of a job (job_images.result), as the pipeline stored them. */
export function writtenResults(workDir: string, jobId: number): WrittenResult[] {
  return withStore(workDir, (db) =>
    (
      db
        .prepare(`SELECT result FROM job_images WHERE job_id = ? AND state = 'written' ORDER BY sop_instance_uid`)
        .all(jobId) as Array<{ result: string }>
    ).map((r) => JSON.parse(r.result) as WrittenResult),
  );
}

// ---------------------------------------------------------------------------------------------------------------
// Orthanc's view

export interface StoredInstance {
  orthancId: string;
  sopInstanceUid: string;
  sopClassUid: string;
  modality: string;
  studyInstanceUid: string;
  seriesInstanceUid: string;
}

/** Every instance Orthanc holds in the study with this StudyInstanceUID ([] when it has no such study). */
export async function orthancStudyInstances(
  orthanc: OrthancUnderTest,
  studyInstanceUid: string,
): Promise<StoredInstance[]> {
  const response = await fetch(`http://127.0.0.1:${orthanc.httpPort}/tools/lookup`, {
    method: 'POST',
    body: studyInstanceUid,
  });
  if (!response.ok) throw new Error(`POST /tools/lookup: HTTP ${response.status}`);
  const found = ((await response.json()) as Array<{ ID: string; Type: string }>).filter((f) => f.Type === 'Study');
  const instances: StoredInstance[] = [];
  for (const study of found) {
    for (const instance of await orthanc.getJson<Array<{ ID: string }>>(`/studies/${study.ID}/instances`)) {
      const tags = await orthanc.instanceTags(instance.ID);
      instances.push({
        orthancId: instance.ID,
        sopInstanceUid: String(tags.SOPInstanceUID),
        sopClassUid: String(tags.SOPClassUID),
        modality: String(tags.Modality),
        studyInstanceUid: String(tags.StudyInstanceUID),
        seriesInstanceUid: String(tags.SeriesInstanceUID),
      });
    }
  }
  return instances;
}

// ---------------------------------------------------------------------------------------------------------------
// An ORU as the listener parsed it

export interface OruFields {
  controlId: string;
  /** OBR-18. */
  accession: string;
  /** OBR-25. */
  resultStatus: string;
  /** OBX ST 113014: the study. */
  studyInstanceUid: string | undefined;
  /** OBX CWE CXR-CLASS: the model's class name (CWE-9, original text). */
  predicted: string | undefined;
  /** OBX NM CXR-PROB-<CLASS>, by the class name in OBX-3.2 ("Probability <class>"). */
  probabilities: Record<string, number>;
  /** OBX ST CXR-HEATMAP. */
  heatmapSeries: string | undefined;
  /** TQ1-9.1: the routing rule's priority (S urgent, R normal). */
  priority: string | undefined;
}

export function oruFields(message: ReceivedMessage): OruFields {
  if (message.segments === undefined)
    throw new Error(`python-hl7 could not parse message ${message.index}: ${message.parseError ?? '?'}`);
  const segments = message.segments;
  const field = (segment: [string, ...string[][]], n: number): string[] => (segment[n] as string[] | undefined) ?? [];
  const obr = segments.find((s) => s[0] === 'OBR');
  if (obr === undefined) throw new Error(`message ${message.controlId} has no OBR`);
  const fields: OruFields = {
    controlId: message.controlId,
    accession: field(obr, 18)[0] ?? '',
    resultStatus: field(obr, 25)[0] ?? '',
    studyInstanceUid: undefined,
    predicted: undefined,
    probabilities: {},
    heatmapSeries: undefined,
    priority: segments.find((s) => s[0] === 'TQ1')?.[9]?.[0],
  };
  // The study-level summary only: the per-image groups (OBX-4 set) repeat the same codes.
  for (const obx of segments.filter((s) => s[0] === 'OBX' && (field(s, 4)[0] ?? '') === '')) {
    const [code = '', text = ''] = field(obx, 3);
    const value = field(obx, 5)[0] ?? '';
    if (code === '113014') fields.studyInstanceUid = value;
    else if (code === 'CXR-CLASS') fields.predicted = field(obx, 5)[8] ?? value;
    else if (code === 'CXR-HEATMAP') fields.heatmapSeries = value;
    else if (code.startsWith('CXR-PROB-')) fields.probabilities[text.replace(/^Probability /, '')] = Number(value);
  }
  return fields;
}

/** Messages received under one control ID, over several listeners (e.g. one stopped and another started on its port). */
export function receivedWithControlId(listeners: readonly Hl7Listener[], controlId: string): ReceivedMessage[] {
  return listeners.flatMap((l) => l.received.filter((m) => m.controlId === controlId));
}

// ---------------------------------------------------------------------------------------------------------------
// Logs

/** Position of the first log line that matches (-1 when none does): log order is the order things happened in. */
export function logIndex(logs: readonly LogLine[], predicate: (line: LogLine) => boolean): number {
  return logs.findIndex(predicate);
}

export const isLog =
  (event: LogEvent, fields: Record<string, unknown> = {}) =>
  (line: LogLine): boolean =>
    line.event === event && Object.entries(fields).every(([k, v]) => line[k] === v);
