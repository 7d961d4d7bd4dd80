import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { runCommand } from './run-command.js';

/** File paths of a throw-away PKI made at test time (never committed). */
export interface TestPki {
  caCert: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
  /** A second CA that signed nothing our servers trust. */
  otherCaCert: string;
  /** A client pair signed by the other CA: a server trusting caCert must refuse it. */
  untrustedClientCert: string;
  untrustedClientKey: string;
}

async function openssl(args: readonly string[], cwd: string): Promise<void> {
  const result = await runCommand('openssl', args, { cwd, timeoutMs: 60_000 });
  if (result.code !== 0) throw new Error(`openssl ${args.join(' ')} failed: ${result.stderr}`);
}

async function makeCa(dir: string, name: string): Promise<{ cert: string; key: string }> {
  const cert = path.join(dir, `${name}.crt`);
  const key = path.join(dir, `${name}.key`);
  await openssl(
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      key,
      '-out',
      cert,
      '-days',
      '2',
      '-subj',
      `/CN=${name}`,
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
    ],
    dir,
  );
  return { cert, key };
}

/**
 * Issues a leaf certificate signed by `ca`. `usage` picks the extended key usage; servers get SANs for 127.0.0.1
 * and localhost so hostname checks pass the way they would in a hospital with real names.
 */
export async function issueCertificate(
  dir: string,
  ca: { cert: string; key: string },
  name: string,
  subject: string,
  usage: 'server' | 'client',
): Promise<{ cert: string; key: string }> {
  const cert = path.join(dir, `${name}.crt`);
  const key = path.join(dir, `${name}.key`);
  const csr = path.join(dir, `${name}.csr`);
  const ext = path.join(dir, `${name}.ext`);
  writeFileSync(
    ext,
    usage === 'server'
      ? 'basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n'
      : 'basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n',
  );
  await openssl(
    [
      'req',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      key,
      '-out',
      csr,
      '-subj',
      subject,
    ],
    dir,
  );
  await openssl(
    [
      'x509',
      '-req',
      '-in',
      csr,
      '-CA',
      ca.cert,
      '-CAkey',
      ca.key,
      '-CAcreateserial',
      '-out',
      cert,
      '-days',
      '2',
      '-extfile',
      ext,
    ],
    dir,
  );
  return { cert, key };
}

/** A test CA, a server pair (127.0.0.1, localhost), a client pair (CN=MODALITY1) and an untrusted client pair. */
export async function makeTestPki(dir: string): Promise<TestPki> {
  const ca = await makeCa(dir, 'test-ca');
  const other = await makeCa(dir, 'other-ca');
  const server = await issueCertificate(dir, ca, 'server', '/CN=127.0.0.1', 'server');
  const client = await issueCertificate(dir, ca, 'client', '/CN=MODALITY1', 'client');
  const untrusted = await issueCertificate(dir, other, 'untrusted-client', '/CN=MODALITY1', 'client');
  return {
    caCert: ca.cert,
    serverCert: server.cert,
    serverKey: server.key,
    clientCert: client.cert,
    clientKey: client.key,
    otherCaCert: other.cert,
    untrustedClientCert: untrusted.cert,
    untrustedClientKey: untrusted.key,
  };
}
