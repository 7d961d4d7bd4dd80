// Test helper: a real PostgreSQL cluster (Debian's `postgresql`), made by the test in a temporary directory.
//
// initdb and the server refuse to run as root, so when the tests are root the cluster belongs to the `postgres`
// user that Debian's package creates (runuser -u postgres). The server listens on 127.0.0.1 at a freePort() and
// puts its unix socket in the cluster's own directory (not /var/run/postgresql, which another cluster may use).
// fsync is off: these clusters hold test data only, and a test must not wait on the disk (never in production).
//
// One cluster per test file; each test asks for a fresh database (createDatabase), so tests run side by side.
import { spawn } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { freePort } from './ports.js';
import { runCommand, type CommandResult } from './run-command.js';

export interface PostgresUnderTest {
  readonly port: number;
  /** postgres://postgres@127.0.0.1:<port>/postgres */
  readonly url: string;
  /** A new, empty database; its URL. */
  createDatabase(): Promise<string>;
  /**
   * Stops the server; its connections drop. 'fast' (the default) keeps every committed row; 'immediate' is a
   * crash, which with these clusters' synchronous_commit=off may lose the last commits.
   */
  stopServer(mode?: 'fast' | 'immediate'): Promise<void>;
  /** Starts the server again on the same port and data (after stopServer). */
  startServer(): Promise<void>;
  /** Stops the server and removes the directory. */
  stop(): Promise<void>;
}

/** Where Debian installs each PostgreSQL version's server programs (they are not on PATH there). */
const DEBIAN_ROOT = '/usr/lib/postgresql';

/** The directory holding initdb and pg_ctl: the newest /usr/lib/postgresql/<v>/bin, else PATH. */
function binDir(): string | undefined {
  if (!existsSync(DEBIAN_ROOT)) return undefined;
  const versions = readdirSync(DEBIAN_ROOT)
    .filter((v) => /^\d+$/.test(v) && existsSync(path.join(DEBIAN_ROOT, v, 'bin', 'initdb')))
    .sort((a, b) => Number(b) - Number(a));
  return versions[0] === undefined ? undefined : path.join(DEBIAN_ROOT, versions[0], 'bin');
}

function program(name: string): string {
  const dir = binDir();
  return dir === undefined ? name : path.join(dir, name);
}

const asRoot = process.getuid?.() === 0;

/** Runs a PostgreSQL program as the cluster's owner. */
async function runAsOwner(name: string, args: string[], timeoutMs = 60_000): Promise<CommandResult> {
  const result = asRoot
    ? await runCommand('runuser', ['-u', 'postgres', '--', program(name), ...args], { timeoutMs })
    : await runCommand(program(name), args, { timeoutMs });
  if (result.code !== 0) {
    throw new Error(
      `${name} ${args.join(' ')} failed (${result.code ?? result.signal}): ${result.stderr}${result.stdout}`,
    );
  }
  return result;
}

/**
 * SIGQUIT to the postmaster of this data directory (PostgreSQL's immediate shutdown: it ends its backends too),
 * by the PID in the first line of postmaster.pid. False when there is none.
 */
function quitPostmaster(data: string): boolean {
  let pid: number;
  try {
    pid = Number(readFileSync(path.join(data, 'postmaster.pid'), 'utf8').split('\n')[0]);
  } catch {
    return false;
  }
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 'SIGQUIT');
    return true;
  } catch {
    return false;
  }
}

let databases = 0;

export interface PostgresStartOptions {
  /** fsync, synchronous_commit and full_page_writes on, as in production (benchmarks); off by default (tests). */
  durable?: boolean;
}

export async function startPostgres(start: PostgresStartOptions = {}): Promise<PostgresUnderTest> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'cxr-pg-'));
  const data = path.join(dir, 'data');
  if (asRoot) {
    const owner = await runCommand('id', ['-u', 'postgres']);
    const group = await runCommand('id', ['-g', 'postgres']);
    chownSync(dir, Number(owner.stdout.trim()), Number(group.stdout.trim()));
  }
  const port = await freePort();
  await runAsOwner('initdb', ['-D', data, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--locale=C', '--no-sync']);
  const options = [
    `-p ${port}`,
    `-c listen_addresses=127.0.0.1`,
    `-c unix_socket_directories=${dir}`,
    ...(start.durable === true
      ? ['-c fsync=on', '-c synchronous_commit=on', '-c full_page_writes=on']
      : ['-c fsync=off', '-c synchronous_commit=off', '-c full_page_writes=off']),
    '-c max_connections=50',
  ].join(' ');
  const log = path.join(dir, 'server.log');
  const startServer = async (): Promise<void> => {
    await runAsOwner('pg_ctl', ['start', '-D', data, '-w', '-t', '60', '-l', log, '-o', options]);
  };
  const stopServer = async (mode: 'fast' | 'immediate' = 'fast'): Promise<void> => {
    if (!existsSync(path.join(data, 'postmaster.pid'))) return;
    try {
      await runAsOwner('pg_ctl', ['stop', '-D', data, '-w', '-m', mode]);
    } catch (error) {
      // pg_ctl could not stop it: end the postmaster by its PID.
      if (!quitPostmaster(data)) throw error;
    }
  };
  // A test process that ends without its after hook (ava's timeout, a crash) must not leave the server running.
  const onExit = (): void => {
    quitPostmaster(data);
    rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', onExit);
  try {
    await startServer();
  } catch (error) {
    process.off('exit', onExit);
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  return {
    port,
    url,
    async createDatabase(): Promise<string> {
      databases += 1;
      const name = `t${process.pid}_${databases}`;
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      try {
        await client.query(`CREATE DATABASE ${name}`);
      } finally {
        await client.end();
      }
      return `postgres://postgres@127.0.0.1:${port}/${name}`;
    },
    stopServer,
    startServer,
    async stop(): Promise<void> {
      try {
        await stopServer('immediate');
      } finally {
        process.off('exit', onExit);
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}

/** Another node's transaction, held open by a psql session (another process) while the test goes on. */
export interface OtherSession {
  /** Resolves with psql's exit code once the transaction is over; `stderr` then says why if it failed. */
  readonly exited: Promise<number | null>;
  readonly stderr: () => string;
}

/**
 * Runs `statements` in one transaction on `url` in a psql session, holds it open for `holdSeconds` (pg_sleep), then
 * commits; resolves once that session holds a RowExclusiveLock on `table` (its write has begun), as seen from `db`.
 */
export async function otherSession(
  url: string,
  statements: string,
  options: { table: string; holdSeconds: number; db: { prepare(sql: string): { get(): unknown } } },
): Promise<OtherSession> {
  const child = spawn(
    'psql',
    [url, '-v', 'ON_ERROR_STOP=1', '-c', `BEGIN; ${statements}; SELECT pg_sleep(${options.holdSeconds}); COMMIT;`],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
  const holding = (): boolean =>
    options.db
      .prepare(
        `SELECT 1 AS one FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
         WHERE c.relname = '${options.table}' AND l.mode = 'RowExclusiveLock' AND l.pid <> pg_backend_pid()`,
      )
      .get() !== undefined;
  const deadline = Date.now() + 30_000;
  while (!holding()) {
    if (Date.now() > deadline) throw new Error(`the other session never wrote to ${options.table}: ${stderr}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return { exited, stderr: () => stderr };
}
