import test from 'ava';
import { chmodSync, copyFileSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { dicomSchema, pacsDestinationSchema } from '../../src/config/schema.js';
import { boundAeTitle, keyFileExposure, serverSecureContext, subjectText } from '../../src/dimse/dicom-tls.js';
import { dicomSecurityWarnings } from '../../src/dimse/dicom-tls-warnings.js';
import { GatewayError } from '../../src/errors.js';
import { makeTestPki, type TestPki } from '../helpers/test-pki.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'dicom-tls-'));
let pki: TestPki;
test.before(async () => {
  pki = await makeTestPki(dir);
});

test('subject text and the AE a subject is bound to: full DN, CN=name, bare common name; nothing else', (t) => {
  t.is(subjectText({ C: 'CH', O: 'Radiology', CN: 'MODALITY1' } as never), 'C=CH,O=Radiology,CN=MODALITY1');
  const allowed = [
    { subject: 'C=CH, O=Radiology, CN=DX1', aeTitle: 'DX1_AE' },
    { subject: 'CN=MODALITY1', aeTitle: 'MODALITY1' },
    { subject: 'CR2', aeTitle: 'CR2_AE' },
  ];
  t.is(boundAeTitle(allowed, 'C=CH,O=Radiology,CN=DX1', 'DX1'), 'DX1_AE');
  t.is(boundAeTitle(allowed, 'O=Other,CN=MODALITY1', 'MODALITY1'), 'MODALITY1');
  t.is(boundAeTitle(allowed, 'CN=CR2', 'CR2'), 'CR2_AE');
  t.is(boundAeTitle(allowed, 'CN=INTRUDER', 'INTRUDER'), undefined);
  t.is(boundAeTitle(allowed, 'C=CH,O=Other,CN=DX1', 'DX1'), undefined);
});

test('schema: mutual TLS needs caFile; allowedSubjects needs mutual TLS; plain off needs tls; ports must differ', (t) => {
  const files = { certFile: pki.serverCert, keyFile: pki.serverKey };
  t.notThrows(() => dicomSchema.parse({ tls: { ...files, port: 2762 } }));
  t.throws(() => dicomSchema.parse({ tls: { ...files, requireClientCertificate: true } }), { message: /caFile/ });
  t.throws(
    () =>
      dicomSchema.parse({ tls: { ...files, caFile: pki.caCert, allowedSubjects: [{ subject: 'X', aeTitle: 'X' }] } }),
    { message: /allowedSubjects needs requireClientCertificate/ },
  );
  t.throws(() => dicomSchema.parse({ plain: false }), { message: /nothing would listen/ });
  t.throws(() => dicomSchema.parse({ port: 2762, tls: files }), { message: /must differ/ });
  t.notThrows(() => dicomSchema.parse({ port: 2762, plain: false, tls: files }));
  t.throws(
    () =>
      pacsDestinationSchema.parse({
        type: 'dicom',
        name: 'p',
        host: 'pacs',
        port: 2762,
        aeTitle: 'PACS',
        tls: { certFile: pki.clientCert },
      }),
    { message: /certFile and keyFile go together/ },
  );
});

test('serverSecureContext: unreadable files and a key that does not fit the certificate are GatewayErrors naming the file', (t) => {
  const base = { port: 2762, certFile: pki.serverCert, keyFile: pki.serverKey, requireClientCertificate: false };
  t.notThrows(() => serverSecureContext(base));
  const missing = t.throws(() => serverSecureContext({ ...base, keyFile: path.join(dir, 'absent.key') }));
  t.true(missing instanceof GatewayError);
  t.regex(missing?.message ?? '', /absent\.key/);
  const mismatch = t.throws(() => serverSecureContext({ ...base, keyFile: pki.clientKey }));
  t.regex(mismatch?.message ?? '', /unusable/);
});

test('a private key readable by group or others is warned about; mode 600 is not', (t) => {
  const key = path.join(dir, 'mode.key');
  copyFileSync(pki.serverKey, key);
  chmodSync(key, 0o644);
  t.regex(keyFileExposure(key) ?? '', /readable by group or others \(mode 644\)/);
  chmodSync(key, 0o600);
  t.is(keyFileExposure(key), undefined);
});

test('security warnings: open listener with allowAny, plain DICOM to a remote PACS, unverified PACS, exposed key; none for loopback', (t) => {
  const key = path.join(dir, 'exposed.key');
  copyFileSync(pki.clientKey, key);
  chmodSync(key, 0o640);
  const pacs = [
    pacsDestinationSchema.parse({ type: 'dicom', name: 'remote', host: '10.1.2.3', port: 104, aeTitle: 'PACS' }),
    pacsDestinationSchema.parse({
      type: 'dicom',
      name: 'lax',
      host: 'pacs.example',
      port: 2762,
      aeTitle: 'PACS',
      tls: { verifyServer: false, certFile: pki.clientCert, keyFile: key },
    }),
    pacsDestinationSchema.parse({ type: 'dicom', name: 'local', host: '127.0.0.1', port: 104, aeTitle: 'PACS' }),
  ];
  const warnings = dicomSecurityWarnings(dicomSchema.parse({ host: '0.0.0.0' }), pacs);
  t.true(warnings.some((w) => /0\.0\.0\.0 is reachable from the network and dicom\.callers\.allowAny/.test(w)));
  t.true(warnings.some((w) => /plain DICOM listener/.test(w)));
  t.true(warnings.some((w) => /destination remote: DICOM to 10\.1\.2\.3:104 without TLS/.test(w)));
  t.true(warnings.some((w) => /destination lax: tls\.verifyServer is false/.test(w)));
  t.true(warnings.some((w) => /destination lax: the private key file .*exposed\.key/.test(w)));
  t.false(warnings.some((w) => /destination local/.test(w)));
  t.deepEqual(dicomSecurityWarnings(dicomSchema.parse({}), [pacs[2] as (typeof pacs)[number]]), []);
});
