import type { MessagePort } from 'node:worker_threads';

// The messages between PostgresDatabase (the main thread, which waits) and its bridge worker (which owns the
// connection). Both sides are this package's own code in one process, so plain types suffice here: nothing read
// back from outside crosses this boundary unchecked (rows are checked by the store code that reads them).

/** Buffers cross the thread boundary as Uint8Array (structured clone); each side turns them back into Buffers. */
export type BridgeValue = string | number | bigint | null | Uint8Array;

export interface BridgeSettings {
  url: string;
  /** PostgreSQL's own statement_timeout: the server cancels a statement running longer (SQLSTATE 57014). */
  statementTimeoutMs: number;
  /** How long connecting (TCP, TLS, authentication) may take before the statement fails. */
  connectTimeoutMs: number;
  applicationName: string;
}

export type BridgeRequest =
  | {
      id: number;
      kind: 'query';
      sql: string;
      params: BridgeValue[];
      /** Inside a transaction a lost connection must fail the statement: a new connection would not hold it. */
      inTransaction: boolean;
    }
  | { id: number; kind: 'simple'; sql: string; inTransaction: boolean }
  | { id: number; kind: 'close' };

export type BridgeFailureKind =
  /** PostgreSQL answered with an error; `sqlstate` says which. */
  | 'sql'
  /** The server could not be reached, or the connection dropped. */
  | 'connection'
  /** The reply could not be read into rows (an int8 beyond Number.MAX_SAFE_INTEGER, for one). */
  | 'value';

export interface BridgeFailure {
  kind: BridgeFailureKind;
  message: string;
  sqlstate: string | undefined;
  detail: string | undefined;
}

export type BridgeReply =
  | {
      id: number;
      ok: true;
      rows: Array<Record<string, unknown>>;
      rowCount: number;
      /** The command tag: a COMMIT that PostgreSQL answers with ROLLBACK did not commit. */
      command: string;
    }
  | { id: number; ok: false; failure: BridgeFailure };

export interface BridgeWorkerData {
  settings: BridgeSettings;
  /** The worker's end of the channel; the main thread reads its end with receiveMessageOnPort, never a listener. */
  port: MessagePort;
  /** One Int32: the worker sets it to 1 after posting a reply, and wakes the waiting main thread. */
  signal: SharedArrayBuffer;
}
