// PostgreSQL behind the synchronous SqlDatabase seam (issue 20). The store's callers are synchronous (they were
// written for better-sqlite3), so this class keeps them so: each statement is posted to a worker thread that owns
// the connection (bridge-worker.ts), and the calling thread blocks in Atomics.wait until the answer is in its
// port, which it reads with receiveMessageOnPort (the technique of the `synckit` package). The cost is that the
// event loop stands still for each statement's round trip; BENCHMARKS.md measures it per received instance.
import { performance } from 'node:perf_hooks';
import { MessageChannel, receiveMessageOnPort, Worker, type MessagePort } from 'node:worker_threads';
import { GatewayError } from '../../errors.js';
import type { SqlDatabase, SqlDialect, SqlRunResult, SqlStatement, SqlValue } from '../sql-database.js';
import type { BridgeFailure, BridgeReply, BridgeRequest, BridgeWorkerData } from './bridge-protocol.js';
import { numberPlaceholders } from './placeholders.js';

export interface PostgresOptions {
  /** postgres://user:password@host:port/database (never logged nor put in an error: it may hold a password). */
  url: string;
  /** The server cancels a statement that runs longer (SQLSTATE 57014). Default 30 s. */
  statementTimeoutMs?: number;
  /** Connecting (TCP, TLS, authentication) may take this long. Default 10 s. */
  connectTimeoutMs?: number;
  /**
   * How long the calling thread waits for any answer before it gives the connection up (a server that
   * stopped answering without closing the socket). Default: connect + statement timeout + 5 s, so that the
   * server's own timeout, with its clearer error, normally comes first.
   */
  answerTimeoutMs?: number;
  applicationName?: string;
}

/** SQLSTATE codes the store reacts to. */
export const SQLSTATE = {
  UNIQUE_VIOLATION: '23505',
  FOREIGN_KEY_VIOLATION: '23503',
  IN_FAILED_TRANSACTION: '25P02',
  SERIALIZATION_FAILURE: '40001',
  DEADLOCK_DETECTED: '40P01',
  LOCK_NOT_AVAILABLE: '55P03',
  QUERY_CANCELED: '57014',
} as const;

/** An error PostgreSQL answered with; `code` is its SQLSTATE (e.g. '23505' for a unique violation). */
export class PostgresError extends Error {
  readonly code: string;
  readonly detail: string | undefined;

  constructor(code: string, message: string, detail?: string) {
    super(`PostgreSQL error ${code}: ${message}${detail === undefined ? '' : ` (${detail})`}`);
    this.name = 'PostgresError';
    this.code = code;
    this.detail = detail;
  }
}

interface Bridge {
  worker: Worker;
  port: MessagePort;
  signal: Int32Array;
}

const WORKER_URL = new URL('./bridge-worker.js', import.meta.url);
const CLOSE_TIMEOUT_MS = 5_000;

export class PostgresDatabase implements SqlDatabase {
  readonly dialect: SqlDialect = 'postgres';
  private bridge: Bridge | undefined;
  private nextId = 0;
  private depth = 0;
  /**
   * The connection of the open transaction was lost: the server rolled it back, so every further statement of
   * it fails too, rather than running alone on a new connection and committing half a transition.
   */
  private transactionLost = false;
  private closed = false;
  private workerError: Error | undefined;
  private readonly statementTimeoutMs: number;
  private readonly connectTimeoutMs: number;
  private readonly answerTimeoutMs: number;

  private constructor(private readonly options: PostgresOptions) {
    this.statementTimeoutMs = options.statementTimeoutMs ?? 30_000;
    this.connectTimeoutMs = options.connectTimeoutMs ?? 10_000;
    this.answerTimeoutMs = options.answerTimeoutMs ?? this.statementTimeoutMs + this.connectTimeoutMs + 5_000;
  }

  /** Starts the bridge and connects, so that a wrong URL or an unreachable server fails at start. */
  static open(options: PostgresOptions): PostgresDatabase {
    const db = new PostgresDatabase(options);
    try {
      db.prepare('SELECT 1').get();
    } catch (error) {
      db.close();
      throw error;
    }
    return db;
  }

  prepare(sql: string): SqlStatement {
    const numbered = numberPlaceholders(sql);
    const query = (params: SqlValue[]): Extract<BridgeReply, { ok: true }> => {
      if (params.length !== numbered.count) {
        throw new RangeError(`the statement has ${numbered.count} placeholders but got ${params.length} values`);
      }
      return this.call({ kind: 'query', sql: numbered.text, params, inTransaction: this.depth > 0 });
    };
    return {
      run: (...params: SqlValue[]): SqlRunResult => ({ changes: query(params).rowCount }),
      get: (...params: SqlValue[]): unknown => rowsOf(query(params))[0],
      all: (...params: SqlValue[]): unknown[] => rowsOf(query(params)),
    };
  }

  exec(sql: string): void {
    this.call({ kind: 'simple', sql, inTransaction: this.depth > 0 });
  }

  transaction<A extends unknown[], R>(fn: (...args: A) => R): (...args: A) => R {
    return (...args: A): R => (this.depth === 0 ? this.outermost(fn, args) : this.savepoint(fn, args));
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    const bridge = this.bridge;
    if (bridge === undefined) return;
    try {
      // A stopping gateway does not wait long for a goodbye to a server that does not answer.
      this.call({ kind: 'close' }, Math.min(this.answerTimeoutMs, CLOSE_TIMEOUT_MS));
    } catch {
      // Ending the connection failed (the server is gone): terminating the worker below closes its socket.
    }
    this.abandon(bridge);
  }

  private outermost<A extends unknown[], R>(fn: (...args: A) => R, args: A): R {
    this.command('BEGIN');
    this.depth = 1;
    this.transactionLost = false;
    try {
      const result = fn(...args);
      refusePromise(result);
      const reply = this.command('COMMIT');
      // PostgreSQL answers COMMIT of a transaction in which a statement failed (and the caller caught the
      // error) with ROLLBACK and no error: nothing was written, and the caller must know.
      if (reply.command === 'ROLLBACK') {
        throw new PostgresError(
          SQLSTATE.IN_FAILED_TRANSACTION,
          'the transaction was rolled back at COMMIT because a statement inside it had failed; use a nested transaction (a savepoint) around a statement whose failure is handled',
        );
      }
      return result;
    } catch (error) {
      this.rollbackQuietly('ROLLBACK');
      throw error;
    } finally {
      this.depth = 0;
    }
  }

  private savepoint<A extends unknown[], R>(fn: (...args: A) => R, args: A): R {
    const name = `cxr_sp${this.depth}`;
    this.command(`SAVEPOINT ${name}`);
    this.depth += 1;
    try {
      const result = fn(...args);
      refusePromise(result);
      this.command(`RELEASE SAVEPOINT ${name}`);
      return result;
    } catch (error) {
      this.rollbackQuietly(`ROLLBACK TO SAVEPOINT ${name}`, `RELEASE SAVEPOINT ${name}`);
      throw error;
    } finally {
      this.depth -= 1;
    }
  }

  private command(sql: string): Extract<BridgeReply, { ok: true }> {
    return this.call({ kind: 'query', sql, params: [], inTransaction: this.depth > 0 });
  }

  /** Undoes after a failure; the failure itself is what the caller gets, whatever the rollback meets. */
  private rollbackQuietly(...statements: string[]): void {
    if (this.bridge === undefined || this.transactionLost) return;
    try {
      for (const sql of statements) this.command(sql);
    } catch {
      // A lost connection rolls the transaction back on the server by itself.
    }
  }

  private call(
    request: DistributiveOmit<BridgeRequest, 'id'>,
    timeoutMs = this.answerTimeoutMs,
  ): Extract<BridgeReply, { ok: true }> {
    if (this.closed && request.kind !== 'close') {
      throw new GatewayError('STORE_UNAVAILABLE', 'the PostgreSQL store is closed (the gateway is stopping)');
    }
    if (this.depth > 0 && this.transactionLost) {
      throw new GatewayError(
        'STORE_UNAVAILABLE',
        'the connection to PostgreSQL was lost inside this transaction: none of it is committed',
      );
    }
    const bridge = this.bridge ?? this.start();
    const id = (this.nextId += 1);
    Atomics.store(bridge.signal, 0, 0);
    bridge.port.postMessage({ ...request, id });
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      for (let m = receiveMessageOnPort(bridge.port); m !== undefined; m = receiveMessageOnPort(bridge.port)) {
        const reply = m.message as BridgeReply;
        if (reply.id !== id) continue;
        if (reply.ok) return reply;
        if (reply.failure.kind === 'connection' && this.depth > 0) this.transactionLost = true;
        throw errorOf(reply.failure);
      }
      const left = deadline - performance.now();
      if (left <= 0) {
        this.abandon(bridge);
        const reason = this.workerError === undefined ? '' : ` (the bridge thread failed: ${this.workerError.message})`;
        throw new GatewayError(
          'STORE_UNAVAILABLE',
          `PostgreSQL did not answer within ${timeoutMs} ms; the connection is given up and the next statement opens a new one${reason}`,
        );
      }
      Atomics.wait(bridge.signal, 0, 0, left);
      // Lowered before the port is read: a reply posted after that read raises it again, so none is missed.
      Atomics.store(bridge.signal, 0, 0);
    }
  }

  private start(): Bridge {
    const { port1, port2 } = new MessageChannel();
    const signal = new SharedArrayBuffer(4);
    const workerData: BridgeWorkerData = {
      settings: {
        url: this.options.url,
        statementTimeoutMs: this.statementTimeoutMs,
        connectTimeoutMs: this.connectTimeoutMs,
        applicationName: this.options.applicationName ?? 'cxr-gateway',
      },
      signal,
      port: port2,
    };
    const worker = new Worker(WORKER_URL, { workerData, transferList: [port2] });
    // An uncaught failure of the thread would otherwise be thrown in this one; it is reported with the
    // timeout that the missing answer causes.
    worker.on('error', (error: Error) => {
      this.workerError = error;
    });
    this.workerError = undefined;
    this.bridge = { worker, port: port1, signal: new Int32Array(signal) };
    return this.bridge;
  }

  private abandon(bridge: Bridge): void {
    if (this.bridge === bridge) this.bridge = undefined;
    if (this.depth > 0) this.transactionLost = true;
    bridge.port.close();
    bridge.worker.unref();
    bridge.worker.terminate().catch(() => undefined);
  }
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

function errorOf(failure: BridgeFailure): Error {
  switch (failure.kind) {
    case 'sql':
      return new PostgresError(failure.sqlstate ?? 'XX000', failure.message, failure.detail);
    case 'value':
      return new GatewayError('POSTGRES_INTEGER_UNSAFE', failure.message);
    case 'connection':
      return new GatewayError(
        'STORE_UNAVAILABLE',
        `PostgreSQL cannot be reached or dropped the connection${failure.sqlstate === undefined ? '' : ` (SQLSTATE ${failure.sqlstate})`}: ${failure.message}`,
      );
  }
}

/** Buffers (bytea) arrive as Uint8Array after the thread hop; callers get Buffers, as from better-sqlite3. */
function rowsOf(reply: Extract<BridgeReply, { ok: true }>): Array<Record<string, unknown>> {
  for (const row of reply.rows) {
    for (const [key, value] of Object.entries(row)) {
      if (value instanceof Uint8Array && !Buffer.isBuffer(value)) {
        row[key] = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
      }
    }
  }
  return reply.rows;
}

function refusePromise(result: unknown): void {
  if (result instanceof Promise) {
    throw new TypeError('a transaction function cannot return a promise: the transaction would end before it');
  }
}
