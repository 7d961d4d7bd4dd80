import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import type { LogEvent } from '../../src/logging/log-events.js';
import { freePort } from './ports.js';
import { runCommand, type CommandResult } from './run-command.js';

export const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src/cli/main.js');

/** One JSON line of the daemon's log; tests find lines by `event` (src/logging/log-events.ts), never by message. */
export type LogLine = Record<string, unknown> & { level: string; message: string; event?: LogEvent };

/** A config section tree; sections given here replace the defaults key by key. */
export type ConfigOverrides = Record<string, Record<string, unknown>>;

export interface GatewayUnderTest {
  readonly pid: number;
  readonly port: number;
  readonly workDir: string;
  readonly configPath: string;
  readonly logs: LogLine[];
  waitForLog(predicate: (line: LogLine) => boolean, what: string, timeoutMs?: number): Promise<LogLine>;
  /** SIGTERM and wait; resolves with the exit code. */
  stop(): Promise<number | null>;
  /** SIGKILL: the crash we must survive. */
  kill9(): Promise<void>;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Writes a config for a fresh work folder (or a given one) and a free port. */
export async function writeGatewayConfig(
  overrides: ConfigOverrides = {},
  workDir?: string,
): Promise<{ workDir: string; configPath: string; port: number }> {
  const dir = workDir ?? mkdtempSync(path.join(os.tmpdir(), 'cxr-gw-'));
  const port = await freePort();
  const config = {
    ...overrides,
    dicom: { port, ...(overrides.dicom ?? {}) },
    storage: { dataDir: 'data', minFreeDiskMB: 1, ...(overrides.storage ?? {}) },
    assembly: { quietPeriodSeconds: 1, ...(overrides.assembly ?? {}) },
    logging: { level: 'debug', format: 'json', ...(overrides.logging ?? {}) },
    // Port 0: tests run daemons side by side; the log line 'admin endpoints ready' gives the URL.
    admin: { port: 0, ...(overrides.admin ?? {}) },
  };
  const configPath = path.join(dir, 'config.yaml');
  writeFileSync(configPath, stringify(config));
  return { workDir: dir, configPath, port: config.dicom.port as number };
}

/** Starts the real daemon as a child process and waits until its DICOM listener is up. */
export async function startGateway(
  overrides: ConfigOverrides = {},
  existing?: { workDir: string; configPath: string; port: number },
  /** The line that says it is up: a node without the receive role opens no DICOM listener (GATEWAY-7010 then). */
  readyEvent: LogEvent = 'DIMSE-1000',
): Promise<GatewayUnderTest> {
  const { workDir, configPath, port } = existing ?? (await writeGatewayConfig(overrides));
  const child: ChildProcessByStdio<null, Readable, Readable> = spawn(
    process.execPath,
    [CLI, 'start', '--config', configPath],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const logs: LogLine[] = [];
  const waiters = new Set<() => void>();
  let buffered = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => {
    buffered += chunk.toString();
    let newline: number;
    while ((newline = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, newline);
      buffered = buffered.slice(newline + 1);
      try {
        logs.push(JSON.parse(line) as LogLine);
      } catch {
        logs.push({ level: 'raw', message: line });
      }
    }
    for (const wake of waiters) wake();
  });
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => {
      for (const wake of waiters) wake();
      resolve({ code, signal });
    }),
  );
  let hasExited = false;
  void exited.then(() => (hasExited = true));

  const waitForLog = (predicate: (line: LogLine) => boolean, what: string, timeoutMs = 60_000): Promise<LogLine> =>
    new Promise((resolve, reject) => {
      const check = () => {
        const found = logs.find(predicate);
        if (found) {
          done();
          resolve(found);
        } else if (hasExited) {
          done();
          reject(new Error(`gateway exited while waiting for ${what}; stderr: ${stderr}`));
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(
          new Error(`timed out waiting for ${what}; last logs: ${JSON.stringify(logs.slice(-5))} stderr: ${stderr}`),
        );
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        waiters.delete(check);
      };
      waiters.add(check);
      check();
    });

  // Generous: a daemon starting inference workers on a loaded 2-core CI machine can take a while.
  await waitForLog((l) => l.event === readyEvent, readyEvent, 90_000);
  const pid = child.pid;
  if (pid === undefined) throw new Error('gateway process has no pid');
  return {
    pid,
    port,
    workDir,
    configPath,
    logs,
    waitForLog,
    exited,
    async stop() {
      if (!hasExited) process.kill(pid, 'SIGTERM');
      return (await exited).code;
    },
    async kill9() {
      if (!hasExited) process.kill(pid, 'SIGKILL');
      await exited;
    },
  };
}

/** Runs the CLI to completion, e.g. `jobs --json`. */
/**
 * `cxr-gateway admin add-user` through the real CLI with the password on stdin, as a provisioning script does;
 * resolves with the exit code.
 */
export function addConsoleUser(
  configPath: string,
  user: string,
  role: 'admin' | 'viewer',
  password: string,
): Promise<number | null> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [CLI, 'admin', 'add-user', user, '--role', role, '--password-stdin', '--config', configPath],
      { stdio: ['pipe', 'ignore', 'inherit'] },
    );
    child.once('error', reject);
    child.once('exit', (code) => resolve(code));
    child.stdin.end(`${password}\n`);
  });
}

export function runCli(args: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<CommandResult> {
  return runCommand(process.execPath, [CLI, ...args], { env, timeoutMs: 60_000 });
}

export interface JobsListing {
  studies: Array<{
    studyInstanceUid: string;
    state: string;
    revision: number;
    instanceCount: number;
    callingAe: string;
  }>;
  jobs: Array<{ id: number; studyInstanceUid: string; revision: number; state: string; instanceCount: number }>;
}

/** What `cxr-gateway jobs --json` says about the store behind a config. */
export async function listJobs(configPath: string): Promise<JobsListing> {
  const result = await runCli(['jobs', '--config', configPath, '--json']);
  if (result.code !== 0) throw new Error(`jobs failed (${result.code}): ${result.stderr}`);
  return JSON.parse(result.stdout) as JobsListing;
}
