import { readFileSync } from 'node:fs';
import net, { isIP } from 'node:net';
import tls from 'node:tls';
import { GatewayError, describeError } from '../errors.js';
import { BCP195_CIPHERS, TLS_MIN_VERSION } from '../config/tls-profile.js';
import { whenServerAccepted } from './tls-accepted.js';
import type { MllpTransport } from '../reporting/mllp-sender.js';
import type { SendOutcome } from '../reporting/mllp-outcome.js';

/** destinations.ris[].tls of an mllp destination (src/config/schema.ts). */
export interface MllpTlsSettings {
  /** PEM CA certificate(s) the RIS's certificate must chain to; the system's store when left out. */
  caFile?: string | undefined;
  /** Our client certificate and its key (PEM), for a RIS that asks for one. */
  certFile?: string | undefined;
  keyFile?: string | undefined;
  /** Verify the RIS's certificate and name (default true); off only for a test set-up. */
  verifyServer: boolean;
  /** The name the RIS's certificate must carry when it differs from `host` (also sent as SNI). */
  servername?: string | undefined;
}

/**
 * The failures a RIS's TLS produces, as delivery causes (FAILURE_CLASSES in retry-policy.ts has their class):
 * - tls-untrusted-certificate: WE refused the RIS's certificate (unknown CA, self-signed, expired, wrong name);
 * - tls-certificate-refused: the RIS refused OUR certificate, or that we sent none (its alert says so);
 * - tls-handshake-failed: anything else during the handshake (no common version or cipher, a plain-TCP peer,
 *   a connection dropped mid-handshake).
 */
const UNTRUSTED_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_UNTRUSTED',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_REVOKED',
  'CERT_SIGNATURE_FAILURE',
  'CERT_REJECTED',
  'INVALID_CA',
  'INVALID_PURPOSE',
  'HOSTNAME_MISMATCH',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/** OpenSSL alerts a server sends when it does not accept the client's certificate (or its absence). */
const PEER_REFUSED_ALERT =
  /ALERT_(CERTIFICATE_REQUIRED|BAD_CERTIFICATE|UNKNOWN_CA|CERTIFICATE_UNKNOWN|UNSUPPORTED_CERTIFICATE|CERTIFICATE_EXPIRED|CERTIFICATE_REVOKED|ACCESS_DENIED|HANDSHAKE_FAILURE)/;

/** The cause and reason of a TLS failure, or undefined when `error` is not one (ECONNREFUSED and the like). */
export function classifyTlsError(error: NodeJS.ErrnoException, peer: string): SendOutcome | undefined {
  const code = error.code ?? '';
  if (UNTRUSTED_CODES.has(code)) {
    return {
      kind: 'retry',
      cause: 'tls-untrusted-certificate',
      reason: `the RIS at ${peer} presented a certificate we do not trust (${code}): check tls.caFile and tls.servername against its certificate`,
    };
  }
  if (PEER_REFUSED_ALERT.test(code)) {
    return {
      kind: 'retry',
      cause: 'tls-certificate-refused',
      reason: `the RIS at ${peer} refused the TLS handshake (${code}): it wants a client certificate it trusts (tls.certFile, tls.keyFile)`,
    };
  }
  if (code.startsWith('ERR_SSL_') || code.startsWith('ERR_TLS_') || code === 'EPROTO') {
    return {
      kind: 'retry',
      cause: 'tls-handshake-failed',
      reason: `TLS handshake with the RIS at ${peer} failed (${code || describeError(error)})`,
    };
  }
  return undefined;
}

/** The event our TLS sockets emit once they may carry messages (see open()). */
const READY = 'mllp-ready';
/** How long a TLS 1.3 connection waits for the server's session ticket before it sends anyway. */
const TICKET_WAIT_MS = 300;

interface Progress {
  /** The TCP connection is up (the handshake has begun). */
  connected: boolean;
  /** Our side of the handshake is complete (secureConnect). */
  secured: boolean;
}

interface TlsMaterial {
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
}

function readMaterial(settings: MllpTlsSettings): TlsMaterial {
  const read = (file: string | undefined, what: string) => {
    if (file === undefined) return undefined;
    try {
      return readFileSync(file);
    } catch (error) {
      throw new GatewayError('MLLP_TLS_FILE_UNREADABLE', `cannot read the ${what} ${file}: ${describeError(error)}`);
    }
  };
  return {
    ca: read(settings.caFile, 'CA file (tls.caFile)'),
    cert: read(settings.certFile, 'client certificate (tls.certFile)'),
    key: read(settings.keyFile, 'client key (tls.keyFile)'),
  };
}

/**
 * MLLP over TLS as an MllpTransport. The files are read now (a missing one stops the start with
 * MLLP_TLS_FILE_UNREADABLE) and again for every new connection, so that a renewed certificate or CA is used from
 * the next connection on without a restart; if a file cannot be read then, the last good copy is used.
 */
export class MllpTlsTransport implements MllpTransport {
  private material: TlsMaterial;
  private readonly progress = new WeakMap<net.Socket, Progress>();

  constructor(
    private readonly settings: MllpTlsSettings,
    private readonly onFileError: (error: unknown) => void = () => undefined,
  ) {
    this.material = readMaterial(settings);
  }

  open(host: string, port: number): { socket: tls.TLSSocket; ready: typeof READY } {
    try {
      this.material = readMaterial(this.settings);
    } catch (error) {
      this.onFileError(error);
    }
    const servername = this.settings.servername ?? (isIP(host) === 0 ? host : undefined);
    const socket = tls.connect({
      host,
      port,
      ...(servername !== undefined ? { servername } : {}),
      ...this.material,
      minVersion: TLS_MIN_VERSION,
      ciphers: BCP195_CIPHERS,
      // Verification is on unless the config says verifyServer: false; with it on, Node also checks the name.
      rejectUnauthorized: this.settings.verifyServer,
    });
    const progress: Progress = { connected: false, secured: false };
    this.progress.set(socket, progress);
    socket.once('connect', () => (progress.connected = true));
    socket.once('secureConnect', () => {
      progress.secured = true;
      // Under TLS 1.3, wait for the server's verdict on our certificate: a refusal is then told from other closes.
      whenServerAccepted(socket, TICKET_WAIT_MS, () => socket.emit(READY));
    });
    return { socket, ready: READY };
  }

  classify(
    error: NodeJS.ErrnoException | undefined,
    phase: 'connect' | 'exchange',
    peer: string,
    socket: net.Socket,
  ): SendOutcome | undefined {
    const known = error === undefined ? undefined : classifyTlsError(error, peer);
    if (known !== undefined || phase === 'exchange') return known;
    const secured = this.progress.get(socket)?.secured ?? false;
    if (secured && (error === undefined || error.code === 'ECONNRESET' || error.code === 'EPIPE')) {
      // Our side of the handshake was done, the server dropped us before its ticket: it refused our certificate
      // (some TLS stacks close without sending the alert that would say so).
      return {
        kind: 'retry',
        cause: 'tls-certificate-refused',
        reason: `the RIS at ${peer} closed the TLS connection right after the handshake: it did not accept our client certificate, or that we sent none (tls.certFile, tls.keyFile)`,
      };
    }
    const connected = this.progress.get(socket)?.connected ?? false;
    if (!secured && (error === undefined || (connected && (error.code === 'ECONNRESET' || error.code === 'EPIPE')))) {
      // Closed or reset before the handshake finished: a peer that dropped us mid-handshake, one that speaks plain
      // TCP, or a TLS stack that refused our hello without an alert.
      return {
        kind: 'retry',
        cause: 'tls-handshake-failed',
        reason: `the RIS at ${peer} closed the connection during the TLS handshake`,
      };
    }
    return undefined;
  }
}
