import test from 'ava';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { loadConfig } from '../../src/config/load-config.js';
import { configSchema, pacsDestinationSchema } from '../../src/config/schema.js';
import { securityWarnings } from '../../src/config/security-warnings.js';
import { createDestinations } from '../../src/export/create-destinations.js';
import { PacsDicomwebDestination } from '../../src/export/pacs-dicomweb-destination.js';
import { createLogger } from '../../src/logging/logger.js';

const logger = createLogger({
  level: 'error',
  format: 'json',
  stream: new Writable({ write: (_chunk, _encoding, callback) => callback() }),
});

test('a dicomweb PACS destination: defaults (no auth, 120 s); createDestinations builds a STOW-RS destination', (t) => {
  const parsed = pacsDestinationSchema.parse({
    type: 'dicomweb',
    name: 'web',
    baseUrl: 'https://pacs.example/dicom-web/',
  });
  t.like(parsed, { type: 'dicomweb', auth: { type: 'none' }, timeoutSeconds: 120 });
  const { pacs } = createDestinations({ pacs: [parsed], ris: [] }, 'CXR_GATEWAY', logger);
  const built = pacs.get('web');
  t.true(built instanceof PacsDicomwebDestination);
  t.is((built as PacsDicomwebDestination).studiesUrl.href, 'https://pacs.example/dicom-web/studies');
});

test('refused: a URL that is not http(s), an inline password, an unknown auth type', (t) => {
  const base = { type: 'dicomweb', name: 'web' };
  t.false(pacsDestinationSchema.safeParse({ ...base, baseUrl: 'ftp://pacs.example/' }).success);
  t.false(pacsDestinationSchema.safeParse({ ...base, baseUrl: 'not a url' }).success);
  t.false(
    pacsDestinationSchema.safeParse({
      ...base,
      baseUrl: 'http://pacs/',
      auth: { type: 'basic', username: 'u', password: 'inline' },
    }).success,
  );
  t.false(pacsDestinationSchema.safeParse({ ...base, baseUrl: 'http://pacs/', auth: { type: 'digest' } }).success);
});

test('passwordFile, tokenFile and tls.caFile are resolved against the config file folder', (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'cxr-dicomweb-'));
  const file = path.join(dir, 'cxr-gateway.yaml');
  writeFileSync(
    file,
    [
      'destinations:',
      '  pacs:',
      '    - { type: dicomweb, name: a, baseUrl: "https://a/dicom-web", auth: { type: basic, username: gw, passwordFile: secrets/a.pw }, tls: { caFile: tls/ca.pem } }',
      '    - { type: dicomweb, name: b, baseUrl: "http://b/dicom-web", auth: { type: bearer, tokenFile: /etc/b.token } }',
      '  ris: []',
      'rules: []',
    ].join('\n'),
  );
  const { config } = loadConfig(file);
  const [a, b] = config.destinations.pacs;
  t.like(a, {
    auth: { type: 'basic', username: 'gw', passwordFile: path.join(dir, 'secrets/a.pw') },
    tls: { caFile: path.join(dir, 'tls/ca.pem') },
  });
  t.like(b, { auth: { type: 'bearer', tokenFile: '/etc/b.token' } });
});

test('check-config warns about an http baseUrl off loopback (tls-off), not about https or loopback http', (t) => {
  const codes = (baseUrl: string) =>
    securityWarnings(
      configSchema.parse({
        dicom: { host: '127.0.0.1' },
        destinations: { pacs: [{ type: 'dicomweb', name: 'web', baseUrl }], ris: [] },
        rules: [],
      }),
    )
      .filter((w) => w.key.startsWith('destinations.pacs'))
      .map((w) => `${w.code} ${w.key}`);
  t.deepEqual(codes('http://10.20.0.12/dicom-web'), ['tls-off destinations.pacs.0.baseUrl']);
  t.deepEqual(codes('https://10.20.0.12/dicom-web'), []);
  t.deepEqual(codes('http://127.0.0.1:8042/dicom-web'), []);
  t.deepEqual(codes('http://[::1]:8042/dicom-web'), []);
});
