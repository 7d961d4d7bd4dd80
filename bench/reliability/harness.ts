// Shared plumbing of the robustness suite (bench/reliability/*): a seeded RNG that is printed so a failing run can
// be replayed, option parsing, the daemon under test (the real CLI as a child process, as the tests start it), a
// read-only look into its store and output folders, the legitimate sender (DCMTK storescu) and a one-screen
// summary. Each scenario module exports a `run...` function (used by the CI subset in test/reliability) and runs
// itself from the command line.

import Database from 'better-sqlite3';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { storescu } from '../../test/helpers/dcmtk.js';
import { newUid, writeImageFile, type SyntheticImageFile } from '../../test/helpers/dicom-factory.js';
import {
  startGateway,
  writeGatewayConfig,
  type ConfigOverrides,
  type GatewayUnderTest,
} from '../../test/helpers/gateway-process.js';
import { tinyModelDir } from '../../test/helpers/tiny-densenet.js';

// ---------------------------------------------------------------------------------------------------------------
// Seeded randomness

/** mulberry32: small, deterministic; the seed is printed by every script so a run can be replayed exactly. */
export class Rng {
  private state: number;
  constructor(readonly seed: number) {
    this.state = seed >>> 0;
  }
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** Integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  pick<T>(items: readonly T[]): T {
    const item = items[this.int(items.length)];
    if (item === undefined) throw new Error('pick from an empty list');
    return item;
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
}

export function randomSeed(): number {
  return Math.floor(Math.random() * 0xffffffff) >>> 0;
}

// ---------------------------------------------------------------------------------------------------------------
// Options

/** `--name value` / `--name=value` options; numbers only (every knob of the suite is a count, a seed or seconds). */
export function parseNumberOptions<T extends Record<string, number>>(argv: readonly string[], defaults: T): T {
  const out: Record<string, number> = { ...defaults };
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i] ?? '';
    if (!arg.startsWith('--'))
      throw new Error(
        `unexpected argument '${arg}'; options are ${Object.keys(defaults)
          .map((k) => `--${k}`)
          .join(' ')}`,
      );
    const [rawName, inline] = arg.slice(2).split('=', 2) as [string, string | undefined];
    const name = rawName.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
    if (!(name in defaults))
      throw new Error(
        `unknown option --${rawName}; options are ${Object.keys(defaults)
          .map((k) => `--${k}`)
          .join(' ')}`,
      );
    const value = inline ?? argv[(i += 1)];
    const n = Number(value);
    if (value === undefined || !Number.isFinite(n)) throw new Error(`--${rawName} needs a number`);
    out[name] = n;
  }
  return out as T;
}

/** True when this module is the script node was started with (not imported by a test). */
export function isMain(importMetaUrl: string): boolean {
  const script = process.argv[1];
  return script !== undefined && pathToFileURL(path.resolve(script)).href === importMetaUrl;
}

/** Runs a script's main, prints its error and sets the exit code (1: an invariant failed, 2: the harness broke). */
export function runMain(main: () => Promise<boolean>): void {
  main().then(
    (ok) => {
      process.exitCode = ok ? 0 : 1;
    },
    (error: unknown) => {
      console.error(error instanceof Error ? (error.stack ?? error.message) : String(error));
      process.exitCode = 2;
    },
  );
}

// ---------------------------------------------------------------------------------------------------------------
// Summary

export type Figure = [label: string, value: string | number, verdict?: 'ok' | 'FAIL' | ''];

/** One screen: the scenario, its seed and options, each figure with ok/FAIL where it is an invariant. */
export function printSummary(title: string, seed: number, options: Record<string, number>, figures: Figure[]): void {
  const width = Math.max(...figures.map(([label]) => label.length));
  const lines = [
    '',
    `== ${title} ==`,
    `seed ${seed} (replay: --seed ${seed}); ${Object.entries(options)
      .filter(([k]) => k !== 'seed')
      .map(([k, v]) => `${k}=${v}`)
      .join(' ')}`,
    ...figures.map(
      ([label, value, verdict]) =>
        `  ${label.padEnd(width)}  ${String(value).padStart(10)}${verdict ? `  ${verdict}` : ''}`,
    ),
    `verdict: ${figures.some(([, , v]) => v === 'FAIL') ? 'FAIL' : 'ok'}`,
    '',
  ];
  console.log(lines.join('\n'));
}

export function check(ok: boolean): 'ok' | 'FAIL' {
  return ok ? 'ok' : 'FAIL';
}

export function elapsedSeconds(since: number): string {
  return ((Date.now() - since) / 1000).toFixed(1);
}

// ---------------------------------------------------------------------------------------------------------------
// The daemon under test

let tinyModel: string | undefined;

/**
 * Overrides for a daemon that processes every CR/DX study with the tiny test model on one wasm worker and writes
 * its SCs and ORUs to folders under its work folder (no network peers: the suite measures the gateway alone).
 * Logs at info so that tens of thousands of fuzz connections do not fill the harness's memory.
 */
export function folderPipelineConfig(extra: ConfigOverrides = {}): ConfigOverrides {
  tinyModel ??= tinyModelDir();
  return {
    ...extra,
    models: { tiny: tinyModel },
    inference: { defaultModel: 'tiny', workers: 1, backend: 'wasm', ...(extra.inference ?? {}) },
    destinations: {
      pacs: [{ type: 'folder', name: 'pacs-folder', path: 'out/dicom' }],
      ris: [{ type: 'folder', name: 'ris-folder', path: 'out/hl7' }],
    } as unknown as Record<string, unknown>,
    rules: [
      {
        name: 'chest',
        match: { attributes: { Modality: { oneOf: ['CR', 'DX'] } } },
        action: { model: 'tiny', outputs: ['sc'], pacs: ['pacs-folder'], ris: ['ris-folder'], priority: 'normal' },
      },
    ] as unknown as Record<string, unknown>,
    delivery: { maxAttempts: 50, initialBackoffSeconds: 0.2, maxBackoffSeconds: 1, ...(extra.delivery ?? {}) },
    logging: { level: 'info', format: 'json', ...(extra.logging ?? {}) },
  };
}

export interface DaemonSetup {
  workDir: string;
  configPath: string;
  port: number;
}

/** A work folder and config for the folder pipeline; `dataDir` overrides storage.dataDir (e.g. a tmpfs). */
export async function prepareDaemon(extra: ConfigOverrides = {}, workDir?: string): Promise<DaemonSetup> {
  return writeGatewayConfig(folderPipelineConfig(extra), workDir);
}

export async function startDaemon(setup: DaemonSetup): Promise<GatewayUnderTest> {
  return startGateway({}, setup);
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** TCP connections on the daemon's listening port (server side), any state but LISTEN and TIME-WAIT, from `ss`. */
export function serverConnections(port: number): number {
  const out = execFileSync('ss', ['-Htn', 'state', 'all', `( sport = :${port} )`], { encoding: 'utf8' });
  return out
    .split('\n')
    .filter((l) => l.trim() !== '')
    .filter((l) => !/^(LISTEN|TIME-WAIT)\s/.test(l.trim())).length;
}

/** Polls `condition` every 50 ms; resolves with whether it held before `timeoutMs`. */
export async function waitUntil(
  condition: () => boolean | Promise<boolean>,
  timeoutMs: number,
  everyMs = 50,
): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await condition()) return true;
    if (Date.now() >= deadline) return false;
    await sleep(everyMs);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// ---------------------------------------------------------------------------------------------------------------
// Inputs and the legitimate sender

export function scratchDir(prefix: string): string {
  return mkdtempSync(path.join(os.tmpdir(), `rel-${prefix}-`));
}

/** Small DX images (64 x 64 unless asked otherwise), each its own study unless `studyInstanceUid` is given. */
export async function makeImages(
  dir: string,
  count: number,
  opts: { rows?: number; studyInstanceUid?: string; seedBase?: number } = {},
): Promise<Array<SyntheticImageFile & { path: string }>> {
  mkdirSync(dir, { recursive: true });
  const out: Array<SyntheticImageFile & { path: string }> = [];
  for (let i = 0; i < count; i += 1) {
    out.push(
      await writeImageFile(dir, {
        rows: opts.rows ?? 64,
        columns: opts.rows ?? 64,
        studyInstanceUid: opts.studyInstanceUid ?? newUid(),
        instanceNumber: i + 1,
        seed: (opts.seedBase ?? 0) + i,
      }),
    );
  }
  return out;
}

export interface LegitimateStore {
  ok: boolean;
  ms: number;
  detail: string;
}

/** DCMTK storescu with the given files, one association; ok when it exits 0 (every C-STORE got Success). */
export async function legitimateStore(
  port: number,
  files: readonly string[],
  timeoutSeconds = 60,
): Promise<LegitimateStore> {
  const started = Date.now();
  const result = await storescu(port, files, {
    extraArgs: ['-to', String(timeoutSeconds), '-ta', String(timeoutSeconds), '-td', String(timeoutSeconds)],
  });
  const ms = Date.now() - started;
  return {
    ok: result.code === 0,
    ms,
    detail:
      result.code === 0
        ? ''
        : `${result.code ?? result.signal}: ${result.stderr.trim().split('\n').slice(-2).join(' | ')}`,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// The daemon's store and folders, read-only

export function storePath(workDir: string, dataDir = path.join(workDir, 'data')): string {
  return path.join(dataDir, 'db', 'cxr-gateway.sqlite');
}

export function queryStore<T>(file: string, sql: string, ...params: unknown[]): T[] {
  if (!existsSync(file)) return [];
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    db.pragma('busy_timeout = 5000');
    return db.prepare(sql).all(...params) as T[];
  } finally {
    db.close();
  }
}

/** Every file under a folder (recursively), relative paths. */
export function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  const walk = (d: string, rel: string): void => {
    for (const entry of readdirSync(d, { withFileTypes: true })) {
      const r = rel === '' ? entry.name : `${rel}/${entry.name}`;
      if (entry.isDirectory()) walk(path.join(d, entry.name), r);
      else out.push(r);
    }
  };
  walk(dir, '');
  return out;
}

/** SOP Instance UIDs the store holds (acknowledged instances). */
export function storedInstances(storeFile: string): Set<string> {
  return new Set(
    queryStore<{ sop_instance_uid: string }>(storeFile, 'SELECT sop_instance_uid FROM instances').map(
      (r) => r.sop_instance_uid,
    ),
  );
}

export interface OutputAudit {
  /** Source instance -> how many written image results (across all jobs) name it. */
  writtenPerSource: Map<string, number>;
  /** Jobs by state. */
  jobStates: Record<string, number>;
  /** Deliveries by state. */
  deliveryStates: Record<string, number>;
  /** SC files in the PACS folder, by name (<study>/<sop>.dcm). */
  scFiles: string[];
  /** ORU files in the RIS folder. */
  oruFiles: string[];
}

/** What the pipeline wrote for each source instance, and what reached the output folders. */
export function auditOutputs(workDir: string, storeFile = storePath(workDir)): OutputAudit {
  const writtenPerSource = new Map<string, number>();
  for (const row of queryStore<{ sop_instance_uid: string; n: number }>(
    storeFile,
    `SELECT sop_instance_uid, COUNT(*) AS n FROM job_images WHERE state = 'written' GROUP BY sop_instance_uid`,
  )) {
    writtenPerSource.set(row.sop_instance_uid, row.n);
  }
  const tally = (sql: string): Record<string, number> =>
    Object.fromEntries(queryStore<{ state: string; n: number }>(storeFile, sql).map((r) => [r.state, r.n]));
  return {
    writtenPerSource,
    jobStates: tally('SELECT state, COUNT(*) AS n FROM jobs GROUP BY state'),
    deliveryStates: tally('SELECT state, COUNT(*) AS n FROM deliveries GROUP BY state'),
    scFiles: filesUnder(path.join(workDir, 'out', 'dicom')).filter((f) => f.endsWith('.dcm')),
    oruFiles: filesUnder(path.join(workDir, 'out', 'hl7')).filter((f) => f.endsWith('.hl7')),
  };
}

export function formatStates(states: Record<string, number>): string {
  const entries = Object.entries(states);
  return entries.length === 0 ? '-' : entries.map(([k, v]) => `${k}:${v}`).join(' ');
}
