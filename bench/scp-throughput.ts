// DICOM receive throughput: our Storage SCP against DCMTK's storescp (issue 2).
//
//   node dist/bench/scp-throughput.js [--files 100] [--rounds 3] [--size 2048] [--pdu 131072]
//       [--log-level info] [--tcp-nodelay on|off] [--storescp-fsync] [--baseline-cli PATH] [--work-dir DIR]
//       [--keep] [--json] [--tls]
//
// The same file set (generated once: --files DX images of --size x --size 16-bit pixels, all in one study) is
// pushed by `storescu`, in one association per run, into (a) a freshly started cxr-gateway daemon with an
// empty data dir and (b) `storescp +B` (bit preserving: writes the bytes as received, as we do); with
// --storescp-fsync also (c) storescp that fsyncs each file (see startStorescp). They alternate, and the order
// flips every round. With --baseline-cli, another build of the daemon (e.g. dist/src/cli/main.js of an earlier
// tree) takes part as a fourth server, 'cxr-gateway@base', so before/after figures come from one invocation.
// Only the storescu run is timed. The figure that matters is the ratio ours / storescp
// within this one invocation; absolute MB/s depend on the machine and its disk.
//
// Fairness notes: all servers get the same max receive PDU (storescp accepts at most 131072, so that is
// the default for all), storescu proposes only the contexts it needs (-R), the DCMTK tools run with
// TCP_NODELAY=1 (see dcmtkEnv), the daemon logs at its default level (info), and `sync` runs (untimed) before
// every run so that one run's dirty pages are not written back during the next. Our daemon fsyncs every
// file, its directory and its SQLite commit before answering; storescp does not fsync at all.
//
// --tls (issue 17): TLS against plain in one invocation. The servers are then the daemon's plain listener
// ('cxr-gateway') and its DICOM TLS listener ('cxr-gateway+tls': mutual TLS, a test PKI made with openssl in the
// work folder), each a freshly started daemon with the same config; `storescu +tls` sends the same files over
// TLS 1.3 (DCMTK's default BCP 195 profile). The figure is the ratio TLS / plain of the medians (goal >= 0.7:
// TLS costs at most 30 %). storescp does not take part.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { newUid, writeImageFile } from '../test/helpers/dicom-factory.js';
import { freePort } from '../test/helpers/ports.js';
import { makeTestPki, type TestPki } from '../test/helpers/test-pki.js';
import { runCommand } from '../test/helpers/run-command.js';

const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../src/cli/main.js');
const OUR_AE = 'CXR_GATEWAY';
const DCMTK_AE = 'STORESCP';
const SCU_AE = 'BENCH_SCU';

type Server = 'cxr-gateway' | 'cxr-gateway@base' | 'cxr-gateway+tls' | 'storescp' | 'storescp+fsync';

interface Options {
  files: number;
  rounds: number;
  size: number;
  pdu: number;
  logLevel: string;
  tcpNoDelay: boolean;
  storescpFsync: boolean;
  baselineCli: string | undefined;
  workDir: string | undefined;
  keep: boolean;
  json: boolean;
  tls: boolean;
}

interface RunResult {
  round: number;
  order: number;
  server: Server;
  seconds: number;
  mbPerSecond: number;
  filesReceived: number;
  /** user + system CPU seconds the server process used during the timed transfer (from /proc, clock-tick resolution). */
  serverCpuSeconds: number | undefined;
}

function usage(): never {
  process.stderr.write(
    'usage: node dist/bench/scp-throughput.js [--files N] [--rounds N] [--size PIXELS] [--pdu BYTES] ' +
      '[--log-level LEVEL] [--tcp-nodelay on|off] [--storescp-fsync] [--baseline-cli PATH] [--work-dir DIR] [--keep] [--json] [--tls]\n',
  );
  process.exit(2);
}

function parseArgs(argv: readonly string[]): Options {
  const o: Options = {
    files: 100,
    rounds: 3,
    size: 2048,
    pdu: 131072,
    logLevel: 'info',
    tcpNoDelay: true,
    storescpFsync: false,
    baselineCli: undefined,
    workDir: undefined,
    keep: false,
    json: false,
    tls: false,
  };
  const int = (name: string, v: string | undefined, min: number, max: number): number => {
    const n = Number(v);
    if (v === undefined || !Number.isInteger(n) || n < min || n > max) {
      process.stderr.write(`${name} needs an integer in ${min}..${max}\n`);
      usage();
    }
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    switch (a) {
      case '--files':
        o.files = int(a, argv[++i], 1, 100_000);
        break;
      case '--rounds':
        o.rounds = int(a, argv[++i], 1, 1000);
        break;
      case '--size':
        o.size = int(a, argv[++i], 16, 8192);
        break;
      case '--pdu':
        // storescp and storescu accept 4096..131072.
        o.pdu = int(a, argv[++i], 4096, 131072);
        break;
      case '--log-level': {
        const v = argv[++i];
        if (v === undefined || !['error', 'warn', 'info', 'debug'].includes(v)) usage();
        o.logLevel = v;
        break;
      }
      case '--tcp-nodelay': {
        const v = argv[++i];
        if (v !== 'on' && v !== 'off') usage();
        o.tcpNoDelay = v === 'on';
        break;
      }
      case '--work-dir': {
        const v = argv[++i];
        if (v === undefined) usage();
        o.workDir = path.resolve(v);
        break;
      }
      case '--baseline-cli': {
        const v = argv[++i];
        if (v === undefined) usage();
        o.baselineCli = path.resolve(v);
        break;
      }
      case '--storescp-fsync':
        o.storescpFsync = true;
        break;
      case '--keep':
        o.keep = true;
        break;
      case '--json':
        o.json = true;
        break;
      case '--tls':
        o.tls = true;
        break;
      case '--help':
      case '-h':
        usage();
        break;
      default:
        process.stderr.write(`unknown argument: ${String(a)}\n`);
        usage();
    }
  }
  return o;
}

const progress = (line: string): void => {
  process.stderr.write(`${line}\n`);
};

// ---------------------------------------------------------------------------------------------------------------
// Child processes: every one we start is tracked, and killed by PID if still alive when we leave.

const live = new Map<number, { child: ChildProcess; exited: Promise<void> }>();

function track(child: ChildProcess): Promise<void> {
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
  if (child.pid !== undefined) {
    const pid = child.pid;
    live.set(pid, { child, exited });
    void exited.then(() => live.delete(pid));
  }
  return exited;
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves once the process has exited. */
async function stopProcess(child: ChildProcess, exited: Promise<void>, graceMs = 10_000): Promise<void> {
  const pid = child.pid;
  if (pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return; // already gone
  }
  let timer: NodeJS.Timeout | undefined;
  const killed = new Promise<void>((resolve) => {
    timer = setTimeout(() => {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone meanwhile
      }
      resolve();
    }, graceMs);
  });
  await Promise.race([exited, killed]);
  clearTimeout(timer);
  await exited;
}

function killAllNow(): void {
  for (const [pid] of live) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

/** The temporary work folder, removed on the way out (also on SIGINT/SIGTERM) unless --keep. */
let workRootToRemove: string | undefined;

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    killAllNow();
    if (workRootToRemove !== undefined) rmSync(workRootToRemove, { recursive: true, force: true });
    process.exit(130);
  });
}

/** Like runCommand, but the child is tracked, so it is killed by PID if we leave early. */
function runTracked(
  program: string,
  args: readonly string[],
  options: { timeoutMs: number; env: NodeJS.ProcessEnv },
): Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(program, args, { env: options.env, stdio: ['ignore', 'ignore', 'pipe'] });
    void track(child);
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-8000)));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stderr });
    });
  });
}
process.once('exit', killAllNow);

// ---------------------------------------------------------------------------------------------------------------
// Servers

interface RunningServer {
  child: ChildProcess;
  exited: Promise<void>;
  port: number;
  aeTitle: string;
  /** Files under the server's output that count as received instances. */
  countReceived(): number;
  describeFailure(): string;
}

/** With `pki`, the daemon also runs its DICOM TLS listener (mutual TLS), and the run goes to that one. */
async function startOurs(dir: string, opts: Options, cli: string, pki?: TestPki): Promise<RunningServer> {
  const port = await freePort();
  const tlsPort = pki === undefined ? undefined : await freePort();
  const dataDir = path.join(dir, 'data');
  const configPath = path.join(dir, 'config.yaml');
  const tls =
    pki === undefined
      ? ''
      : `, tls: { port: ${tlsPort}, certFile: ${JSON.stringify(pki.serverCert)}, keyFile: ${JSON.stringify(pki.serverKey)}, caFile: ${JSON.stringify(pki.caCert)}, requireClientCertificate: true }`;
  writeFileSync(
    configPath,
    [
      `dicom: { host: 127.0.0.1, port: ${port}, aeTitle: ${OUR_AE}, maxPduLength: ${opts.pdu}${tls} }`,
      `storage: { dataDir: ${JSON.stringify(dataDir)}, minFreeDiskMB: 1 }`,
      // Longer than any run, so no study is assembled into a job while we measure.
      'assembly: { quietPeriodSeconds: 600 }',
      `logging: { level: ${opts.logLevel}, format: json }`,
      '',
    ].join('\n'),
  );
  const child = spawn(process.execPath, [cli, 'start', '--config', configPath], { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = track(child);
  let stdoutTail = '';
  let stderrTail = '';
  child.stderr?.on('data', (d: Buffer) => (stderrTail = (stderrTail + d.toString()).slice(-4000)));
  // Keep reading stdout (a chatty log level must not block the daemon on a full pipe); the 'DICOM listener
  // ready' line is logged at info, so below that level only a C-ECHO tells us the listener is up.
  child.stdout?.on('data', (d: Buffer) => (stdoutTail = (stdoutTail + d.toString()).slice(-4000)));
  await waitUntilEchoAnswers(
    child,
    exited,
    port,
    OUR_AE,
    () => `cxr-gateway stderr: ${stderrTail} stdout: ${stdoutTail}`,
  );
  const studies = path.join(dataDir, 'spool', 'studies');
  return {
    child,
    exited,
    port: tlsPort ?? port,
    aeTitle: OUR_AE,
    countReceived: () => countFiles(studies, (n) => n.endsWith('.dcm')),
    describeFailure: () => `cxr-gateway stderr: ${stderrTail}\nstdout tail: ${stdoutTail}`,
  };
}

/**
 * storescp +B; with `fsync`, storescp -xcr 'sync FILE' -xs in addition: each received file is fsynced
 * (coreutils `sync FILE`) by a synchronous child process before storescp reads the next request. That is an
 * approximation of "storescp that fsyncs every instance": the sync runs right after the C-STORE response
 * rather than before it, costs a fork/exec, and the directory is not synced.
 */
async function startStorescp(dir: string, opts: Options, fsync: boolean): Promise<RunningServer> {
  const port = await freePort();
  const outDir = path.join(dir, 'out');
  mkdirSync(outDir, { recursive: true });
  const child = spawn(
    'storescp',
    [
      '--output-directory',
      outDir,
      '-aet',
      DCMTK_AE,
      '-pdu',
      String(opts.pdu),
      '+B',
      '-dhl',
      ...(fsync ? ['-xcr', 'sync #p/#f', '-xs'] : []),
      String(port),
    ],
    { stdio: ['ignore', 'pipe', 'pipe'], env: dcmtkEnv },
  );
  const exited = track(child);
  let outputTail = '';
  const keep = (d: Buffer): void => {
    outputTail = (outputTail + d.toString()).slice(-4000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  // storescp prints nothing when it is listening.
  await waitUntilEchoAnswers(child, exited, port, DCMTK_AE, () => `storescp output: ${outputTail}`);
  return {
    child,
    exited,
    port,
    aeTitle: DCMTK_AE,
    countReceived: () => countFiles(outDir, () => true),
    describeFailure: () => `storescp output: ${outputTail}`,
  };
}

/** Polls with C-ECHO until the server answers; stops the server and throws if it exits or takes over 30 s. */
async function waitUntilEchoAnswers(
  child: ChildProcess,
  exited: Promise<void>,
  port: number,
  aeTitle: string,
  describe: () => string,
): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null)
      throw new Error(`server exited before it was ready; ${describe()}`);
    if (await portOpen(port)) {
      const echo = await runTracked('echoscu', ['-aet', SCU_AE, '-aec', aeTitle, '127.0.0.1', String(port)], {
        timeoutMs: 10_000,
        env: dcmtkEnv,
      });
      if (echo.code === 0) return;
    }
    if (Date.now() > deadline) {
      await stopProcess(child, exited, 2000);
      throw new Error(`server not ready after 30 s; ${describe()}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

function countFiles(dir: string, accept: (name: string) => boolean): number {
  let n = 0;
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return 0;
  }
  for (const e of entries) {
    if (e.isDirectory()) n += countFiles(path.join(dir, e.name), accept);
    else if (e.isFile() && accept(e.name)) n += 1;
  }
  return n;
}

let clockTicks = 100;

/**
 * Environment for the DCMTK tools. DCMTK >= 3.6.2 leaves Nagle's algorithm on unless TCP_NODELAY=1 is set; with
 * it on, storescu -> storescp stalls ~40 ms per instance (small command/response PDUs meet delayed ACKs), which
 * caps storescp near 140 MB/s on loopback whatever the disk does. --tcp-nodelay on (the default) sets it for
 * storescu, storescp and echoscu alike, so the reference is DCMTK at its best and the sender is the same for both.
 */
let dcmtkEnv: NodeJS.ProcessEnv = process.env;

function cpuSeconds(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const utime = Number(fields[11]);
    const stime = Number(fields[12]);
    return Number.isFinite(utime) && Number.isFinite(stime) ? (utime + stime) / clockTicks : undefined;
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// One run

async function oneRun(
  server: Server,
  round: number,
  order: number,
  runDir: string,
  files: readonly string[],
  totalBytes: number,
  opts: Options,
  pki: TestPki | undefined,
): Promise<RunResult> {
  mkdirSync(runDir, { recursive: true });
  // Untimed: flush whatever earlier runs (or the file generation) left dirty, so it is not written back now.
  await runCommand('sync', [], { timeoutMs: 300_000 });
  const s =
    server === 'cxr-gateway'
      ? await startOurs(runDir, opts, CLI)
      : server === 'cxr-gateway@base'
        ? await startOurs(runDir, opts, opts.baselineCli ?? CLI)
        : server === 'cxr-gateway+tls'
          ? await startOurs(runDir, opts, CLI, pki)
          : await startStorescp(runDir, opts, server === 'storescp+fsync');
  const tlsArgs =
    server === 'cxr-gateway+tls' && pki !== undefined
      ? ['+tls', pki.clientKey, pki.clientCert, '-pw', '+cf', pki.caCert]
      : [];
  try {
    const args = [
      '-aet',
      SCU_AE,
      '-aec',
      s.aeTitle,
      '-pdu',
      String(opts.pdu),
      '-R',
      ...tlsArgs,
      '127.0.0.1',
      String(s.port),
      ...files,
    ];
    const cpuBefore = cpuSeconds(s.child.pid);
    const t0 = process.hrtime.bigint();
    const result = await runTracked('storescu', args, { timeoutMs: 1_800_000, env: dcmtkEnv });
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    const cpuAfter = cpuSeconds(s.child.pid);
    const serverCpuSeconds = cpuBefore !== undefined && cpuAfter !== undefined ? cpuAfter - cpuBefore : undefined;
    if (result.code !== 0) {
      throw new Error(
        `storescu into ${server} exited with ${String(result.code)} (${String(result.signal)}): ${result.stderr.slice(-2000)}\n${s.describeFailure()}`,
      );
    }
    const filesReceived = s.countReceived();
    if (filesReceived !== files.length) {
      throw new Error(
        `${server} holds ${filesReceived} files after the run, expected ${files.length}\n${s.describeFailure()}`,
      );
    }
    return { round, order, server, seconds, mbPerSecond: totalBytes / 1e6 / seconds, filesReceived, serverCpuSeconds };
  } finally {
    await stopProcess(s.child, s.exited);
    rmSync(runDir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Machine

interface Machine {
  cpu: string;
  nproc: number;
  memoryGiB: number;
  node: string;
  dcmtk: string;
  os: string;
  filesystem: string;
  dirtyRatio: string;
}

async function describeMachine(workRoot: string): Promise<Machine> {
  const version = await runCommand('storescp', ['--version'], { timeoutMs: 10_000 });
  const dcmtk =
    /storescp (v[^\s]+ [0-9-]+)/.exec(version.stdout)?.[1] ?? version.stdout.split('\n')[0]?.trim() ?? 'unknown';
  const df = await runCommand('df', ['-PT', workRoot], { timeoutMs: 10_000 });
  const dfLine = df.stdout.trim().split('\n')[1]?.split(/\s+/) ?? [];
  const filesystem = dfLine.length >= 2 ? `${dfLine[0] ?? '?'} (${dfLine[1] ?? '?'})` : 'unknown';
  const read = (p: string): string => {
    try {
      return readFileSync(p, 'utf8').trim();
    } catch {
      return '?';
    }
  };
  return {
    cpu: os.cpus()[0]?.model ?? 'unknown',
    nproc: os.availableParallelism(),
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
    dcmtk,
    os: `${os.type()} ${os.release()}`,
    filesystem,
    dirtyRatio: `vm.dirty_background_ratio=${read('/proc/sys/vm/dirty_background_ratio')} vm.dirty_ratio=${read('/proc/sys/vm/dirty_ratio')}`,
  };
}

// ---------------------------------------------------------------------------------------------------------------

function median(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[mid] ?? NaN) : ((s[mid - 1] ?? NaN) + (s[mid] ?? NaN)) / 2;
}

async function main(): Promise<void> {
  const opts = parseArgs(process.argv.slice(2));
  dcmtkEnv = { ...process.env };
  if (opts.tcpNoDelay) dcmtkEnv.TCP_NODELAY = '1';
  else delete dcmtkEnv.TCP_NODELAY;
  const tck = await runCommand('getconf', ['CLK_TCK'], { timeoutMs: 5000 }).catch(() => undefined);
  if (tck && Number(tck.stdout.trim()) > 0) clockTicks = Number(tck.stdout.trim());

  if (opts.workDir) mkdirSync(opts.workDir, { recursive: true });
  const workRoot = mkdtempSync(path.join(opts.workDir ?? os.tmpdir(), 'cxr-scp-bench-'));
  if (!opts.keep) workRootToRemove = workRoot;
  try {
    const machine = await describeMachine(workRoot);
    const inputDir = path.join(workRoot, 'input');
    mkdirSync(inputDir);
    progress(`generating ${opts.files} files of ${opts.size}x${opts.size} 16-bit in ${inputDir} ...`);
    const studyInstanceUid = newUid();
    const seriesInstanceUid = newUid();
    const files: string[] = [];
    const g0 = Date.now();
    for (let i = 0; i < opts.files; i++) {
      const f = await writeImageFile(inputDir, {
        rows: opts.size,
        columns: opts.size,
        bitsAllocated: 16,
        bitsStored: 12,
        studyInstanceUid,
        seriesInstanceUid,
        seed: i + 1,
        instanceNumber: i + 1,
      });
      files.push(f.path);
    }
    const totalBytes = files.reduce((sum, f) => sum + statSync(f).size, 0);
    progress(
      `generated ${files.length} files, ${(totalBytes / 1e6).toFixed(1)} MB in ${((Date.now() - g0) / 1000).toFixed(1)} s`,
    );

    const pki = opts.tls ? await makeTestPki(mkdtempSync(path.join(workRoot, 'pki-'))) : undefined;
    const results: RunResult[] = [];
    for (let round = 1; round <= opts.rounds; round++) {
      const servers: Server[] = opts.tls
        ? ['cxr-gateway', 'cxr-gateway+tls']
        : [
            'cxr-gateway',
            'storescp',
            ...(opts.storescpFsync ? (['storescp+fsync'] as const) : []),
            ...(opts.baselineCli !== undefined ? (['cxr-gateway@base'] as const) : []),
          ];
      const order = round % 2 === 1 ? servers : [...servers].reverse();
      for (const [i, server] of order.entries()) {
        const r = await oneRun(
          server,
          round,
          i + 1,
          path.join(workRoot, `run-${round}-${server}`),
          files,
          totalBytes,
          opts,
          pki,
        );
        results.push(r);
        const cpu = r.serverCpuSeconds === undefined ? '' : `, server CPU ${r.serverCpuSeconds.toFixed(2)} s`;
        progress(
          `round ${round} ${server.padEnd(16)} ${r.mbPerSecond.toFixed(1).padStart(7)} MB/s (${r.seconds.toFixed(2)} s${cpu})`,
        );
      }
    }

    if (opts.tls) {
      reportTls(results, opts, totalBytes, machine);
      return;
    }
    const ours = results.filter((r) => r.server === 'cxr-gateway').map((r) => r.mbPerSecond);
    const theirs = results.filter((r) => r.server === 'storescp').map((r) => r.mbPerSecond);
    const theirsFsync = results.filter((r) => r.server === 'storescp+fsync').map((r) => r.mbPerSecond);
    const base = results.filter((r) => r.server === 'cxr-gateway@base').map((r) => r.mbPerSecond);
    const baseMedian = base.length > 0 ? median(base) : undefined;
    const oursMedian = median(ours);
    const theirsMedian = median(theirs);
    const theirsFsyncMedian = theirsFsync.length > 0 ? median(theirsFsync) : undefined;
    const ratio = oursMedian / theirsMedian;
    const ratioVsFsync = theirsFsyncMedian === undefined ? undefined : oursMedian / theirsFsyncMedian;
    const target = 0.7;
    const note =
      'cxr-gateway fsyncs every file, its directory and its SQLite commit before each C-STORE response; ' +
      'storescp does not fsync at all (its files may still be only in the page cache when it answers).';

    if (opts.json) {
      process.stdout.write(
        `${JSON.stringify(
          {
            benchmark: 'scp-throughput',
            date: new Date().toISOString(),
            options: {
              files: opts.files,
              rounds: opts.rounds,
              size: opts.size,
              pdu: opts.pdu,
              logLevel: opts.logLevel,
              dcmtkTcpNoDelay: opts.tcpNoDelay,
            },
            totalBytes,
            machine,
            runs: results,
            median: {
              'cxr-gateway': oursMedian,
              storescp: theirsMedian,
              ...(theirsFsyncMedian === undefined ? {} : { 'storescp+fsync': theirsFsyncMedian }),
              ...(baseMedian === undefined ? {} : { 'cxr-gateway@base': baseMedian }),
            },
            ...(opts.baselineCli === undefined ? {} : { baselineCli: opts.baselineCli }),
            ...(baseMedian === undefined ? {} : { baselineRatio: baseMedian / theirsMedian }),
            ratio,
            ...(ratioVsFsync === undefined ? {} : { ratioVsStorescpFsync: ratioVsFsync }),
            target,
            meetsTarget: ratio >= target,
            note,
          },
          null,
          2,
        )}\n`,
      );
    } else {
      const out: string[] = [];
      out.push('');
      out.push(
        `DICOM receive throughput: ${opts.files} files x ${(totalBytes / opts.files / 1e6).toFixed(2)} MB = ${(totalBytes / 1e6).toFixed(1)} MB per run, one storescu association, PDU ${opts.pdu}, DCMTK TCP_NODELAY ${opts.tcpNoDelay ? '1' : 'unset'}, gateway log level ${opts.logLevel}`,
      );
      out.push(`machine: ${machine.cpu}, ${machine.nproc} CPUs, ${machine.memoryGiB} GiB RAM, ${machine.os}`);
      out.push(
        `         node ${machine.node}, dcmtk ${machine.dcmtk}, work dir on ${machine.filesystem}, ${machine.dirtyRatio}`,
      );
      out.push('');
      out.push('round  order  server              MB/s   seconds  server CPU s');
      for (const r of results) {
        out.push(
          `${String(r.round).padStart(5)}  ${String(r.order).padStart(5)}  ${r.server.padEnd(16)} ${r.mbPerSecond.toFixed(1).padStart(7)} ${r.seconds.toFixed(2).padStart(9)} ${(r.serverCpuSeconds?.toFixed(2) ?? '?').padStart(13)}`,
        );
      }
      out.push('');
      out.push(`median cxr-gateway ${oursMedian.toFixed(1)} MB/s`);
      out.push(`median storescp    ${theirsMedian.toFixed(1)} MB/s`);
      if (theirsFsyncMedian !== undefined) out.push(`median storescp+fsync ${theirsFsyncMedian.toFixed(1)} MB/s`);
      out.push(`ratio ours/storescp ${ratio.toFixed(2)} (target >= ${target}: ${ratio >= target ? 'met' : 'NOT met'})`);
      if (ratioVsFsync !== undefined)
        out.push(`ratio ours/(storescp+fsync) ${ratioVsFsync.toFixed(2)} (information only)`);
      if (baseMedian !== undefined) {
        out.push(`median cxr-gateway@base ${baseMedian.toFixed(1)} MB/s (${opts.baselineCli ?? ''})`);
        out.push(
          `ratio base/storescp ${(baseMedian / theirsMedian).toFixed(2)}, ours/base ${(oursMedian / baseMedian).toFixed(2)}`,
        );
      }
      out.push(`note: ${note}`);
      process.stdout.write(`${out.join('\n')}\n`);
    }
  } finally {
    killAllNow();
    if (opts.keep) progress(`kept ${workRoot}`);
    else rmSync(workRoot, { recursive: true, force: true });
  }
}

/** --tls: the plain and TLS medians of the same daemon, and what TLS costs. */
function reportTls(results: readonly RunResult[], opts: Options, totalBytes: number, machine: Machine): void {
  const plain = median(results.filter((r) => r.server === 'cxr-gateway').map((r) => r.mbPerSecond));
  const overTls = median(results.filter((r) => r.server === 'cxr-gateway+tls').map((r) => r.mbPerSecond));
  const ratio = overTls / plain;
  const target = 0.7;
  if (opts.json) {
    process.stdout.write(
      `${JSON.stringify(
        {
          benchmark: 'scp-throughput --tls',
          date: new Date().toISOString(),
          options: { files: opts.files, rounds: opts.rounds, size: opts.size, pdu: opts.pdu, logLevel: opts.logLevel },
          totalBytes,
          machine,
          runs: results,
          median: { 'cxr-gateway': plain, 'cxr-gateway+tls': overTls },
          ratio,
          target,
          meetsTarget: ratio >= target,
        },
        null,
        2,
      )}\n`,
    );
    return;
  }
  const out: string[] = [''];
  out.push(
    `DICOM receive throughput, TLS vs plain: ${opts.files} files x ${(totalBytes / opts.files / 1e6).toFixed(2)} MB = ${(totalBytes / 1e6).toFixed(1)} MB per run, one storescu association, PDU ${opts.pdu}`,
  );
  out.push(`machine: ${machine.cpu}, ${machine.nproc} CPUs, ${machine.memoryGiB} GiB RAM, ${machine.os}`);
  out.push(`         node ${machine.node}, dcmtk ${machine.dcmtk}, work dir on ${machine.filesystem}`);
  out.push('');
  out.push('round  order  server              MB/s   seconds  server CPU s');
  for (const r of results)
    out.push(
      `${String(r.round).padStart(5)}  ${String(r.order).padStart(5)}  ${r.server.padEnd(16)} ${r.mbPerSecond.toFixed(1).padStart(7)} ${r.seconds.toFixed(2).padStart(9)} ${(r.serverCpuSeconds?.toFixed(2) ?? '?').padStart(13)}`,
    );
  out.push('');
  out.push(`median plain ${plain.toFixed(1)} MB/s, TLS ${overTls.toFixed(1)} MB/s`);
  out.push(
    `ratio TLS/plain ${ratio.toFixed(2)}: TLS costs ${((1 - ratio) * 100).toFixed(0)} % (goal at most 30 %: ${ratio >= target ? 'met' : 'NOT met'})`,
  );
  process.stdout.write(`${out.join('\n')}\n`);
}

main().catch((error: unknown) => {
  killAllNow();
  process.stderr.write(
    `scp-throughput failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
  );
  process.exit(1);
});
