// Test helper: a real Orthanc (Debian's `orthanc` 1.10, with `orthanc-gdcm`) as the PACS our SCU talks to.
//
// Debian's package does not start a service we could use (and must not: tests own their peers), so each test
// file starts its own Orthanc by hand with a JSON config written into a temp dir: its own storage and index,
// DICOM and HTTP ports from freePort, and only the gateway's AE allowed to store.
//
// Orthanc has no bind-address setting: it listens on all interfaces. `RemoteAccessAllowed: false` keeps its
// REST API to loopback callers; its DICOM port only accepts the AEs listed in DicomModalities, from the host
// listed there (DicomCheckModalityHost). Tests only ever connect through 127.0.0.1.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort } from './ports.js';

export interface OrthancOptions {
  /** Orthanc's own AE title (the called AE). Default ORTHANC. */
  aeTitle?: string;
  /** AEs allowed to talk to it, by name: [AE title, host, port]. Default: the gateway, CXR_GATEWAY on 127.0.0.1. */
  modalities?: Record<string, [string, string, number]>;
  /** Any other configuration option, merged over ours. */
  extraConfig?: Record<string, unknown>;
  /**
   * HTTP basic authentication for the REST API: Orthanc then asks every caller for it (AuthenticationEnabled,
   * RegisteredUsers), and the helper's own requests send it.
   */
  basicAuth?: { username: string; password: string };
}

export interface OrthancUnderTest {
  readonly aeTitle: string;
  readonly dicomPort: number;
  readonly httpPort: number;
  /** The PID of the running Orthanc; undefined while stopped. */
  readonly pid: number | undefined;
  readonly workDir: string;
  /** SIGTERM, then SIGKILL after graceMs; resolves once the process is gone. */
  stop(graceMs?: number): Promise<void>;
  /** Starts it again on the same ports and data (after stop()). */
  restart(): Promise<void>;
  /** stop() with a short grace (its data is thrown away) and remove the temp dir. */
  dispose(): Promise<void>;
  /** GET on the REST API; throws with the status and body when it is not 2xx. */
  get(pathAndQuery: string): Promise<Response>;
  getJson<T>(pathAndQuery: string): Promise<T>;
  /** Orthanc IDs of every instance. */
  listInstances(): Promise<string[]>;
  /** `/instances/{id}/tags?simplify`: keyword -> value (strings, or arrays of objects for sequences). */
  instanceTags(id: string): Promise<Record<string, unknown>>;
  /** `/instances/{id}/preview`: the rendered PNG. */
  preview(id: string): Promise<{ contentType: string | null; bytes: Buffer }>;
  /** `/studies/{id}`. */
  study(id: string): Promise<OrthancStudy>;
  /** The Orthanc ID of the instance with this SOP Instance UID, if Orthanc has it (`/tools/lookup`). */
  lookupInstance(sopInstanceUid: string): Promise<string | undefined>;
  /** What Orthanc printed (stderr and stdout), for failure messages. */
  log(): string;
}

export interface OrthancStudy {
  ID: string;
  Series: string[];
  MainDicomTags: Record<string, string>;
  PatientMainDicomTags: Record<string, string>;
}

const START_TIMEOUT_MS = 15_000;

let gdcmPlugin: string | undefined;

/** Where Debian's orthanc-gdcm put its plugin (`dpkg -L orthanc-gdcm`), so the config can load it. */
function findGdcmPlugin(): string {
  if (gdcmPlugin !== undefined) return gdcmPlugin;
  const listing = spawnSync('dpkg', ['-L', 'orthanc-gdcm'], { encoding: 'utf8' });
  const files = listing.status === 0 ? listing.stdout.split('\n') : [];
  const plugin =
    files.find((f) => f.startsWith('/usr/share/orthanc/plugins/') && f.endsWith('.so')) ??
    files.find((f) => /libOrthancGdcm\.so/.test(f));
  if (plugin === undefined)
    throw new Error(
      'the orthanc-gdcm plugin is not installed (apt-get install orthanc orthanc-gdcm; .ci/run does this)',
    );
  gdcmPlugin = plugin;
  return plugin;
}

export async function startOrthanc(options: OrthancOptions = {}): Promise<OrthancUnderTest> {
  const workDir = mkdtempSync(path.join(os.tmpdir(), 'orthanc-'));
  const aeTitle = options.aeTitle ?? 'ORTHANC';
  const dicomPort = await freePort();
  const httpPort = await freePort();
  const gatewayPort = await freePort();
  const config = {
    Name: `test-${path.basename(workDir)}`,
    StorageDirectory: path.join(workDir, 'storage'),
    IndexDirectory: path.join(workDir, 'index'),
    HttpPort: httpPort,
    DicomPort: dicomPort,
    DicomAet: aeTitle,
    RemoteAccessAllowed: false,
    AuthenticationEnabled: options.basicAuth !== undefined,
    ...(options.basicAuth === undefined
      ? {}
      : { RegisteredUsers: { [options.basicAuth.username]: options.basicAuth.password } }),
    DicomCheckCalledAet: true,
    DicomCheckModalityHost: true,
    DicomAlwaysAllowStore: false,
    // Orthanc lets every caller associate as long as any DicomAlwaysAllow* is true (Echo is, by default), and
    // then answers an unknown AE's C-STORE with an A-ABORT. With all of them false, an unknown AE gets a proper
    // A-ASSOCIATE-RJ (permanent, calling AE not recognized), like a PACS that registers its modalities.
    DicomAlwaysAllowEcho: false,
    DicomAlwaysAllowFind: false,
    DicomAlwaysAllowMove: false,
    DicomModalities: options.modalities ?? { gateway: ['CXR_GATEWAY', '127.0.0.1', gatewayPort] },
    Plugins: [findGdcmPlugin()],
    // Small pools and no job persistence: it starts in ~0.3 s; it still takes ~2.5 s to stop on SIGTERM.
    HttpThreadsCount: 4,
    DicomThreadsCount: 2,
    ConcurrentJobs: 1,
    SaveJobs: false,
    StorageCompression: false,
    ...options.extraConfig,
  };
  const configPath = path.join(workDir, 'orthanc.json');
  writeFileSync(configPath, JSON.stringify(config, null, 2));

  const base = `http://127.0.0.1:${httpPort}`;
  const headers: Record<string, string> =
    options.basicAuth === undefined
      ? {}
      : {
          Authorization: `Basic ${Buffer.from(`${options.basicAuth.username}:${options.basicAuth.password}`).toString('base64')}`,
        };
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  let output = '';

  const launch = async (): Promise<void> => {
    const started = spawn('Orthanc', [configPath], { stdio: ['ignore', 'pipe', 'pipe'] });
    child = started;
    exited = new Promise<void>((resolve) => started.once('exit', () => resolve()));
    const keep = (chunk: Buffer): void => {
      output = (output + chunk.toString()).slice(-64 * 1024);
    };
    started.stdout?.on('data', keep);
    started.stderr?.on('data', keep);
    let spawnError: Error | undefined;
    started.once('error', (error) => (spawnError = error));
    let gone = false;
    void exited.then(() => (gone = true));
    const deadline = Date.now() + START_TIMEOUT_MS;
    for (;;) {
      if (spawnError)
        throw new Error(`cannot start Orthanc (is the orthanc package installed?): ${spawnError.message}`);
      if (gone) throw new Error(`Orthanc exited while starting:\n${output.slice(-4000)}`);
      try {
        const response = await fetch(`${base}/system`, { headers });
        if (response.ok) return;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline)
        throw new Error(`Orthanc did not answer /system within ${START_TIMEOUT_MS} ms:\n${output.slice(-4000)}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  };

  const stop = async (graceMs = 5000): Promise<void> => {
    const running = child;
    if (running === undefined || running.exitCode !== null || running.signalCode !== null) {
      child = undefined;
      return;
    }
    running.kill('SIGTERM');
    const timer = setTimeout(() => running.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(timer);
    child = undefined;
  };

  const get = async (pathAndQuery: string): Promise<Response> => {
    const response = await fetch(`${base}${pathAndQuery}`, { headers });
    if (!response.ok) throw new Error(`GET ${pathAndQuery}: HTTP ${response.status} ${await response.text()}`);
    return response;
  };
  const getJson = async <T>(pathAndQuery: string): Promise<T> => (await (await get(pathAndQuery)).json()) as T;

  const orthanc: OrthancUnderTest = {
    aeTitle,
    dicomPort,
    httpPort,
    get pid() {
      return child?.pid;
    },
    workDir,
    stop,
    restart: async () => {
      await stop();
      await launch();
    },
    dispose: async () => {
      // An orderly stop takes Orthanc ~3.5 s (its HTTP server alone ~2 s); nothing it would save is kept.
      await stop(500);
      rmSync(workDir, { recursive: true, force: true });
    },
    get,
    getJson,
    listInstances: () => getJson<string[]>('/instances'),
    instanceTags: (id) => getJson<Record<string, unknown>>(`/instances/${id}/tags?simplify`),
    preview: async (id) => {
      const response = await get(`/instances/${id}/preview`);
      return { contentType: response.headers.get('content-type'), bytes: Buffer.from(await response.arrayBuffer()) };
    },
    study: (id) => getJson<OrthancStudy>(`/studies/${id}`),
    lookupInstance: async (sopInstanceUid) => {
      const response = await fetch(`${base}/tools/lookup`, { method: 'POST', body: sopInstanceUid, headers });
      if (!response.ok) throw new Error(`POST /tools/lookup: HTTP ${response.status}`);
      const found = (await response.json()) as Array<{ ID: string; Type: string }>;
      return found.find((f) => f.Type === 'Instance')?.ID;
    },
    log: () => output,
  };
  try {
    await launch();
  } catch (error) {
    await orthanc.dispose();
    throw error;
  }
  return orthanc;
}

/** Width and height from a PNG's IHDR, after checking its 8-byte signature; throws for anything else. */
export function pngSize(bytes: Buffer): { width: number; height: number } {
  const signature = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  if (bytes.length < 24 || !bytes.subarray(0, 8).equals(signature)) throw new Error('not a PNG: bad signature');
  if (bytes.toString('latin1', 12, 16) !== 'IHDR') throw new Error('not a PNG: no IHDR chunk first');
  return { width: bytes.readUInt32BE(16), height: bytes.readUInt32BE(20) };
}
