import type { DeliveryKind, DeliveryState, ImageState } from './pipeline-store.js';
import type { JobState, StudyState } from './job-store.js';

/**
 * What the operations console asks of the job store, as SQL-side rows (JSON columns left as text: the admin
 * layer parses them through pipeline/stored-columns.ts, whose schemas live above the store). Implemented by
 * ConsoleStore (console-store.ts); the console service (admin/console-service.ts) and the CLI use it.
 *
 * Every action runs in one transaction with its audit entry (audit-trail.ts), and refuses (StoreRefusal) before
 * changing anything when the row is unknown or in the wrong state.
 */

export interface StorePage<T> {
  items: T[];
  total: number;
  offset: number;
  limit: number;
}

export interface StoreStudyFilter {
  state?: StudyState;
  ae?: string;
  accession?: string;
  since?: number;
  until?: number;
  offset: number;
  limit: number;
}

export interface StoreJobFilter {
  state?: JobState;
  destination?: string;
  ae?: string;
  accession?: string;
  studyInstanceUid?: string;
  since?: number;
  until?: number;
  offset: number;
  limit: number;
}

export interface StoreDeliveryFilter {
  state?: DeliveryState;
  destination?: string;
  kind?: DeliveryKind;
  studyInstanceUid?: string;
  since?: number;
  until?: number;
  offset: number;
  limit: number;
}

export interface StudyRowOut {
  studyInstanceUid: string;
  state: StudyState;
  revision: number;
  instanceCount: number;
  firstReceivedAt: number;
  lastReceivedAt: number;
  callingAe: string;
  /** From the first instance's key attributes. */
  accessionNumber: string | null;
  modality: string | null;
  studyDate: string | null;
  latestJob: {
    id: number;
    revision: number;
    state: JobState;
    rule: string | null;
    /** Raw job_images.result JSON of the first written image (for the predicted class), or null. */
    firstResult: string | null;
  } | null;
}

export interface JobRowOut {
  id: number;
  studyInstanceUid: string;
  revision: number;
  state: JobState;
  rule: string | null;
  /** Raw jobs.action JSON (null for ready/ignored jobs). */
  action: string | null;
  priority: 'urgent' | 'normal';
  instanceCount: number;
  attempts: number;
  lastError: string | null;
  createdAt: number;
  updatedAt: number;
  finishedAt: number | null;
  callingAe: string;
  accessionNumber: string | null;
  deliveries: Record<DeliveryState, number>;
}

export interface DeliveryRowOut {
  id: number;
  jobId: number;
  studyInstanceUid: string;
  revision: number;
  kind: DeliveryKind;
  destination: string;
  state: DeliveryState;
  attempts: number;
  nextAttemptAt: number;
  lastError: string | null;
  updatedAt: number;
  /** Raw deliveries.payload JSON (the RIS payload names the .hl7 file). */
  payload: string;
  /** The study's accession number (first instance), for admins who search by it. */
  accessionNumber: string | null;
}

export interface AttemptRowOut {
  deliveryId: number;
  attempt: number;
  at: number;
  outcome: 'delivered' | 'retry' | 'parked' | 'released' | 'discarded';
  detail: string | null;
}

export interface InstanceRowOut {
  sopInstanceUid: string;
  sopClassUid: string;
  seriesInstanceUid: string | null;
  path: string;
  callingAe: string;
  calledAe: string;
  sourceIp: string;
  receivedAt: number;
  /** Raw instances.attributes JSON (KeyAttributes). */
  attributes: string;
}

export interface JobImageRowOut {
  sopInstanceUid: string;
  path: string;
  state: ImageState;
  reason: string | null;
  /** Raw job_images.result JSON, or null. */
  result: string | null;
}

export interface StudyRowsOut {
  study: Omit<StudyRowOut, 'latestJob'>;
  instances: InstanceRowOut[];
  /** Newest revision first. */
  jobs: Array<
    Omit<JobRowOut, 'deliveries'> & {
      images: JobImageRowOut[];
      deliveries: Array<DeliveryRowOut & { history: AttemptRowOut[] }>;
    }
  >;
}

/** Who acts, for the audit entry written in the same transaction. */
export interface StoreActor {
  user: string;
  role: string;
  address: string;
}

/** A refused action: nothing changed. `status` is the HTTP status the console answers with. */
export class StoreRefusal extends Error {
  constructor(
    readonly status: 400 | 404 | 409,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'StoreRefusal';
  }
}

export interface ConsoleQueries {
  studies(filter: StoreStudyFilter): StorePage<StudyRowOut>;
  /** undefined for an unknown study. */
  studyRows(studyInstanceUid: string): StudyRowsOut | undefined;
  jobs(filter: StoreJobFilter): StorePage<JobRowOut>;
  deliveries(filter: StoreDeliveryFilter): StorePage<DeliveryRowOut>;
  delivery(id: number): DeliveryRowOut | undefined;
  /** The study a job belongs to; undefined for an unknown job. */
  studyOfJob(jobId: number): string | undefined;
  /** The newest `last` studies that still have their files (not purged), newest first, with their instances and newest job. */
  recentStudies(last: number): Array<{ study: StudyRowOut; instances: InstanceRowOut[] }>;
  /** Counts for the dashboard: instances/studies received and jobs finished since `since`. */
  throughput(since: number): { studiesReceived: number; instancesReceived: number; jobsFinished: number };
  /** Per destination: last delivered/failed attempt time and reason, pending and parked counts. */
  destinationActivity(): Array<{
    destination: string;
    kind: DeliveryKind;
    lastSuccessAt: number | null;
    lastFailureAt: number | null;
    lastFailure: string | null;
    pending: number;
    parked: number;
  }>;

  /** parked -> pending due `now`, plus the RIS deliveries of the same job held back with it. Returns every row released. */
  releaseDelivery(id: number, actor: StoreActor, now: number): DeliveryRowOut[];
  /** Every parked delivery to `destination` (may be none: returns []). */
  releaseDestination(destination: string, actor: StoreActor, now: number): DeliveryRowOut[];
  /** parked -> discarded with the reason; the job settles (done when nothing is pending or parked any more). */
  discardDelivery(id: number, reason: string, actor: StoreActor, now: number): DeliveryRowOut;
  /** A new revision of the study as a ready job (the pipeline routes it with the running rules). */
  reprocessStudy(studyInstanceUid: string, actor: StoreActor, now: number): { jobId: number; revision: number };
}
