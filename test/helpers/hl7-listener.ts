import { spawn, type ChildProcessByStdio } from 'node:child_process';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { freePort } from './ports.js';

// dist/test/helpers -> the script stays in the source tree (tsc does not copy it).
const SCRIPT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../test/helpers/hl7_listener.py');
// Debian's python3: the python3 on PATH is a separate install that cannot import python3-hl7.
const PYTHON = '/usr/bin/python3';

export type ListenerResponse =
  | 'aa'
  | 'ae'
  | 'ar'
  | 'ca'
  | 'ce'
  | 'cr'
  | 'aa-lf'
  | 'aa-close'
  | 'wrong-id'
  | 'silent'
  | 'close'
  | 'ae-phi'
  | 'ar-phi';

/** What 'ae-phi' and 'ar-phi' answers say in MSA-3, and the name ERR-8 quotes (as DOE^JANE, escaped): patient data. */
export const LISTENER_PATIENT_TEXT = 'no visit for DOE JANE MRN 4711-0815';
export const LISTENER_PATIENT_NAME = 'DOE^JANE';

/** One message as python-hl7 saw it: segments[k] = [name, field1 components, field2 components, ...]. */
export interface ReceivedMessage {
  index: number;
  connection: number;
  controlId: string;
  raw: string;
  response: ListenerResponse;
  segments?: [string, ...string[][]][];
  parseError?: string;
  /** Over TLS: the client certificate's subject CN, or null when the client sent none. */
  peerSubject?: string | null;
}

/** MLLP over TLS: the listener's certificate and key (PEM paths), and a CA whose client certificates it requires. */
export interface Hl7ListenerTls {
  certFile: string;
  keyFile: string;
  clientCaFile?: string;
}

export interface Hl7Listener {
  readonly port: number;
  readonly pid: number;
  readonly received: ReceivedMessage[];
  /** Resolves once `count` messages have been recorded (the record is written before the answer). */
  waitForMessages(count: number, timeoutMs?: number): Promise<ReceivedMessage[]>;
  countByControlId(controlId: string): number;
  /** SIGTERM by PID and wait for the exit. */
  stop(): Promise<void>;
}

/** Starts the python3-hl7 MLLP listener on 127.0.0.1 (a free port unless one is given) and waits until it listens. */
export async function startHl7Listener(
  options: { responses?: readonly ListenerResponse[]; port?: number; tls?: Hl7ListenerTls } = {},
): Promise<Hl7Listener> {
  const port = options.port ?? (await freePort());
  const responses = (options.responses ?? ['aa']).join(',');
  const tls = options.tls;
  const tlsArgs =
    tls === undefined
      ? []
      : [
          '--tls-cert',
          tls.certFile,
          '--tls-key',
          tls.keyFile,
          ...(tls.clientCaFile !== undefined ? ['--tls-client-ca', tls.clientCaFile] : []),
        ];
  const child: ChildProcessByStdio<null, Readable, Readable> = spawn(
    PYTHON,
    [SCRIPT, '--host', '127.0.0.1', '--port', String(port), '--responses', responses, ...tlsArgs],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const received: ReceivedMessage[] = [];
  const wakers = new Set<() => void>();
  let ready = false;
  let stderr = '';
  let buffered = '';
  const exited = new Promise<void>((resolve) =>
    child.once('exit', () => {
      for (const wake of wakers) wake();
      resolve();
    }),
  );
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  child.stdout.on('data', (chunk: Buffer) => {
    buffered += chunk.toString();
    let newline: number;
    while ((newline = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, newline);
      buffered = buffered.slice(newline + 1);
      const record = JSON.parse(line) as { event: string } & Partial<ReceivedMessage>;
      if (record.event === 'ready') ready = true;
      if (record.event === 'message') received.push(record as ReceivedMessage);
    }
    for (const wake of wakers) wake();
  });

  const waitFor = (predicate: () => boolean, what: string, timeoutMs: number) =>
    new Promise<void>((resolve, reject) => {
      const check = () => {
        if (predicate()) {
          finish();
          resolve();
        } else if (child.exitCode !== null || child.signalCode !== null) {
          finish();
          reject(new Error(`hl7 listener exited while waiting for ${what}: ${stderr}`));
        }
      };
      const timer = setTimeout(() => {
        finish();
        reject(new Error(`timed out waiting for ${what}; listener stderr: ${stderr}`));
      }, timeoutMs);
      const finish = () => {
        clearTimeout(timer);
        wakers.delete(check);
      };
      wakers.add(check);
      check();
    });

  await waitFor(() => ready, 'the hl7 listener to start', 10_000);
  return {
    port,
    pid: child.pid as number,
    received,
    async waitForMessages(count, timeoutMs = 5_000) {
      await waitFor(() => received.length >= count, `${count} message(s) at the hl7 listener`, timeoutMs);
      return received;
    },
    countByControlId: (controlId) => received.filter((m) => m.controlId === controlId).length,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) process.kill(child.pid as number, 'SIGTERM');
      await exited;
    },
  };
}
