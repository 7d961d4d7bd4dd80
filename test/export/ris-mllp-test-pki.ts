import { execFile } from 'node:child_process';
import { chmod, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

// A private copy of test/helpers/test-pki.ts's interface (written by the "dicom-tls" part of issue 17), for the
// MLLP-over-TLS and admin HTTPS tests until the parts are merged; the lead keeps one of the two.

export interface TestPki {
  caCert: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
  otherCaCert: string;
  untrustedClientCert: string;
  untrustedClientKey: string;
}

async function openssl(args: string[]): Promise<void> {
  await run('openssl', args, { timeout: 30_000 });
}

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

async function makeCa(dir: string, name: string): Promise<{ cert: string; key: string }> {
  const cert = path.join(dir, `${name}.pem`);
  const key = path.join(dir, `${name}.key`);
  await openssl([
    'req',
    '-x509',
    ...EC,
    '-keyout',
    key,
    '-out',
    cert,
    '-days',
    '2',
    '-subj',
    `/CN=${name} test CA`,
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  await chmod(key, 0o600);
  return { cert, key };
}

async function issue(
  dir: string,
  name: string,
  cn: string,
  ca: { cert: string; key: string },
  extensions: string,
): Promise<{ cert: string; key: string }> {
  const key = path.join(dir, `${name}.key`);
  const csr = path.join(dir, `${name}.csr`);
  const cert = path.join(dir, `${name}.pem`);
  const ext = path.join(dir, `${name}.ext`);
  await writeFile(ext, extensions);
  await openssl(['req', ...EC, '-keyout', key, '-out', csr, '-subj', `/CN=${cn}`]);
  await openssl([
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
  ]);
  await chmod(key, 0o600);
  return { cert, key };
}

/**
 * A test CA with a server certificate (CN 127.0.0.1, SAN IP 127.0.0.1 and DNS localhost) and a client certificate
 * (CN MODALITY1), and another CA with a client pair the first CA does not know. Made with openssl, now, in `dir`:
 * no private key is committed.
 */
export async function makeTestPki(dir: string): Promise<TestPki> {
  const ca = await makeCa(dir, 'ca');
  const other = await makeCa(dir, 'other-ca');
  const leaf = 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyAgreement\n';
  const server = await issue(
    dir,
    'server',
    '127.0.0.1',
    ca,
    `${leaf}extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n`,
  );
  const client = await issue(dir, 'client', 'MODALITY1', ca, `${leaf}extendedKeyUsage=clientAuth\n`);
  const untrusted = await issue(dir, 'untrusted-client', 'MODALITY1', other, `${leaf}extendedKeyUsage=clientAuth\n`);
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
