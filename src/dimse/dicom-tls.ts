import { readFileSync } from 'node:fs';
import tls from 'node:tls';
import type { DicomClientTlsConfig, DicomTlsConfig } from '../config/schema.js';
import { GatewayError, describeError } from '../errors.js';
import { TLS_PROFILE as PROFILE } from '../config/tls-profile.js';

function readPem(file: string, what: string): Buffer {
  try {
    return readFileSync(file);
  } catch (error) {
    throw new GatewayError('DICOM_TLS_FILE', `cannot read the DICOM TLS ${what} ${file}: ${describeError(error)}`);
  }
}

/**
 * The secure-context part of the SCP's TLS listener, read from the configured files now (start-up and every
 * reload). A file that cannot be read, or a key that does not match its certificate, throws a GatewayError
 * naming the file, so a reload can refuse and keep the context it had.
 */
export function serverSecureContext(config: DicomTlsConfig): tls.SecureContextOptions {
  const options: tls.SecureContextOptions = {
    ...PROFILE,
    cert: readPem(config.certFile, 'certificate'),
    key: readPem(config.keyFile, 'private key'),
    ...(config.caFile === undefined ? {} : { ca: readPem(config.caFile, 'CA file') }),
  };
  // Building the context checks that the key matches the certificate: do it here, where we can say which files.
  checkContext(options, `${config.certFile} / ${config.keyFile}`);
  return options;
}

/** The options for tls.createServer: the secure context plus whether client certificates are asked for. */
export function serverOptions(config: DicomTlsConfig): tls.TlsOptions {
  return {
    ...serverSecureContext(config),
    requestCert: config.requireClientCertificate,
    // Node would drop an unverified client silently ("socket hang up"); the SCP checks `authorized` itself right
    // after the handshake, before a byte of DICOM is read, so the refusal is logged and audited with its reason.
    rejectUnauthorized: false,
  };
}

/** The options for tls.connect toward a DICOM peer; servername only for host names (SNI forbids IP addresses). */
export function clientOptions(config: DicomClientTlsConfig, host: string): tls.ConnectionOptions {
  const options: tls.ConnectionOptions = {
    ...PROFILE,
    rejectUnauthorized: config.verifyServer,
    ...(config.caFile === undefined ? {} : { ca: readPem(config.caFile, 'CA file') }),
    ...(config.certFile === undefined ? {} : { cert: readPem(config.certFile, 'certificate') }),
    ...(config.keyFile === undefined ? {} : { key: readPem(config.keyFile, 'private key') }),
  };
  if (!/^[\d.]+$/.test(host) && !host.includes(':')) options.servername = host;
  return options;
}

function checkContext(options: tls.SecureContextOptions, files: string): void {
  try {
    tls.createSecureContext(options);
  } catch (error) {
    throw new GatewayError(
      'DICOM_TLS_FILE',
      `the DICOM TLS key and certificate (${files}) are unusable: ${describeError(error)}`,
    );
  }
}

/** A certificate subject as `CN=..,O=..` in the certificate's order, empty when there is none. */
export function subjectText(subject: tls.PeerCertificate['subject'] | undefined): string {
  if (subject === undefined) return '';
  return Object.entries(subject)
    .flatMap(([key, value]) => (Array.isArray(value) ? value : [value]).map((v) => `${key}=${String(v)}`))
    .join(',');
}

/**
 * The calling AE a client certificate subject is bound to, or undefined when no entry names it. An entry matches
 * the full subject text, `CN=<common name>`, or the bare common name.
 */
export function boundAeTitle(
  allowed: ReadonlyArray<{ subject: string; aeTitle: string }>,
  subject: string,
  commonName: string | undefined,
): string | undefined {
  const norm = (s: string) => s.replace(/\s*,\s*/g, ',').trim();
  for (const entry of allowed) {
    const wanted = norm(entry.subject);
    if (wanted === norm(subject)) return entry.aeTitle;
    if (commonName !== undefined && (wanted === commonName || wanted === `CN=${commonName}`)) return entry.aeTitle;
  }
  return undefined;
}
