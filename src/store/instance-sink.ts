import type { Writable } from 'node:stream';

/** What the network layer knows about an instance before its bytes arrive. */
export interface IncomingInstance {
  sopClassUid: string;
  sopInstanceUid: string;
  transferSyntaxUid: string;
  callingAe: string;
  calledAe: string;
  sourceIp: string;
  associationId: string;
}

export type RefusalReason = 'out-of-resources' | 'malformed' | 'mismatch' | 'internal';

export type IngestOutcome =
  | { kind: 'stored'; studyInstanceUid: string; path: string }
  | { kind: 'duplicate'; studyInstanceUid: string; path: string }
  | { kind: 'refused'; reason: RefusalReason; message: string };

/** One transfer in progress: the SCP writes the dataset into `writable`, then asks to complete it. */
export interface IngestTransfer {
  readonly writable: Writable;
  /** Resolves once the instance is durable (stored/duplicate) or has been refused and removed. */
  complete(): Promise<IngestOutcome>;
  /**
   * The peer went away mid-transfer: remove whatever was written; resolves once it is gone. Nothing was
   * acknowledged.
   */
  abandon(): Promise<void>;
}

export type IngestStart = { kind: 'transfer'; transfer: IngestTransfer } | Extract<IngestOutcome, { kind: 'refused' }>;

/**
 * The hand-over from the SCP to storage. The SCP moves bytes and turns outcomes into DIMSE statuses;
 * what "stored" means (fsync, rename, a committed row) is the sink's business.
 */
export interface InstanceSink {
  begin(incoming: IncomingInstance): IngestStart;
}
