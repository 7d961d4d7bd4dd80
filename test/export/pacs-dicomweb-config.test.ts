import test from 'ava';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { loadConfig } from '../../src/config/load-config.js';
import { pacsDestinationSchema } from '../../src/config/schema.js';
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
