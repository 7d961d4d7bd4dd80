import test from 'ava';
import { chmodSync, copyFileSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { dicomSchema, pacsDestinationSchema } from '../../src/config/schema.js';
import { boundAeTitle, serverSecureContext, subjectText } from '../../src/dimse/dicom-tls.js';
import { securityWarnings } from '../../src/config/security-warnings.js';
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
  const input = (host: string, destinations: typeof pacs) => ({
    dicom: dicomSchema.parse({ host }),
    destinations: { pacs: destinations, ris: [] },
    admin: { enabled: false, host: '127.0.0.1' },
  });
  const warnings = securityWarnings(input('0.0.0.0', pacs)).map((w) => `${w.code} ${w.key}: ${w.message}`);
  t.true(
    warnings.some((w) => /^listener-open-to-any dicom\.host: dicom\.host is 0\.0\.0\.0.*allowAny is true/.test(w)),
  );
  t.true(warnings.some((w) => /^tls-off destinations\.pacs\.0[.:].*PACS destination 'remote' at 10\.1\.2\.3/.test(w)));
  t.true(warnings.some((w) => /^tls-unverified destinations\.pacs\.1[.:]/.test(w)));
  t.true(warnings.some((w) => /^key-file-readable destinations\.pacs\.1\.tls\.keyFile: .*exposed\.key/.test(w)));
  t.false(warnings.some((w) => /destinations\.pacs\.2/.test(w)));
  t.deepEqual(securityWarnings(input('127.0.0.1', [pacs[2] as (typeof pacs)[number]])), []);
});
