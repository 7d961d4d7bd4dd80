import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import net from 'node:net';
import type { PacsDestination, RisDestination } from '../config/schema.js';
import { echo } from '../dimse/echo-scu.js';
import { describeError } from '../errors.js';
import type { Logger } from '../logging/logger.js';
import { PacsDicomwebDestination } from './pacs-dicomweb-destination.js';

/** A probe delivers nothing, so its DICOMweb destination has nothing to log. */
const silentLogger: Logger = { error() {}, warn() {}, info() {}, debug() {} };

/** What a probe found: reachable or not, how long it took, and a sentence (no patient data: a probe carries none). */
export interface ProbeResult {
  destination: string;
  ok: boolean;
  ms: number;
  detail: string;
}

export type ProbedDestination = ({ kind: 'pacs' } & PacsDestination) | ({ kind: 'ris' } & RisDestination);

/**
 * The console's "echo" of a configured destination, the first thing an admin tries after a failure: a DICOM PACS
 * answers a C-ECHO, an MLLP RIS accepts a TCP connection (an HL7 message would reach the RIS's worklist, so no
 * message is sent), a folder exists and is writable. Each wait is bounded by the destination's connect timeout.
 * Never rejects: every failure is a result with the reason.
 */
export async function probeDestination(
  destination: ProbedDestination,
  callingAeTitle: string,
  now: () => number = () => performance.now(),
): Promise<ProbeResult> {
  const started = now();
  const done = (ok: boolean, detail: string): ProbeResult => ({
    destination: destination.name,
    ok,
    ms: Math.round(now() - started),
    detail,
  });
  try {
    if (destination.type === 'folder') {
      const problem = await folderProblem(destination.path);
      return problem === undefined
        ? done(true, `folder ${destination.path} exists and is writable`)
        : done(false, problem);
    }
    if (destination.kind === 'pacs' && destination.type === 'dicomweb') {
      // Nothing is stored: a GET with the destination's own URL, TLS and credentials.
      const probe = await new PacsDicomwebDestination({
        name: destination.name,
        baseUrl: destination.baseUrl,
        auth: destination.auth,
        ...(destination.tls?.caFile === undefined ? {} : { caFile: destination.tls.caFile }),
        timeoutMs: Math.min(destination.timeoutSeconds, 10) * 1000,
        logger: silentLogger,
      }).probe();
      return done(probe.ok, probe.detail);
    }
    const timeoutMs = Math.round(destination.connectTimeoutSeconds * 1000);
    if (destination.kind === 'pacs' && destination.type === 'dicom') {
      const outcome = await echo({
        host: destination.host,
        port: destination.port,
        callingAeTitle: destination.callingAeTitle ?? callingAeTitle,
        calledAeTitle: destination.aeTitle,
        timeoutMs,
        ...(destination.tls === undefined ? {} : { tls: destination.tls }),
      });
      return outcome.ok
        ? done(true, `C-ECHO to ${destination.aeTitle} at ${destination.host}:${destination.port} succeeded`)
        : done(
            false,
            `C-ECHO to ${destination.aeTitle} at ${destination.host}:${destination.port} failed: ${outcome.reason}`,
          );
    }
    const failure = await tcpConnect(destination.host, destination.port, timeoutMs);
    return failure === undefined
      ? done(true, `MLLP listener at ${destination.host}:${destination.port} accepts connections`)
      : done(false, `MLLP listener at ${destination.host}:${destination.port}: ${failure}`);
  } catch (error) {
    return done(false, describeError(error));
  }
}

async function folderProblem(dir: string): Promise<string | undefined> {
  try {
    const info = await stat(dir);
    if (!info.isDirectory()) return `${dir} is not a folder`;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return code === 'ENOENT' ? `folder ${dir} does not exist` : `folder ${dir} cannot be read: ${describeError(error)}`;
  }
  try {
    await access(dir, constants.W_OK);
  } catch {
    return `folder ${dir} is not writable by the gateway's user`;
  }
  return undefined;
}

/** A TCP connection within `timeoutMs`, closed at once; the failure as a sentence, undefined when it connected. */
function tcpConnect(host: string, port: number, timeoutMs: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const finish = (failure: string | undefined) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(failure);
    };
    const timer = setTimeout(() => finish(`no TCP connection within ${timeoutMs} ms`), timeoutMs);
    socket.once('connect', () => finish(undefined));
    socket.once('error', (error: NodeJS.ErrnoException) =>
      finish(
        error.code === 'ECONNREFUSED' ? 'connection refused (nothing listens on that port)' : describeError(error),
      ),
    );
  });
}
