import test from 'ava';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { loadConfig, parseConfigText, resolveConfigPath } from '../../src/config/load-config.js';
import { configSchema } from '../../src/config/schema.js';
import { GatewayError } from '../../src/errors.js';
import { runCli } from '../helpers/gateway-process.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

test('the embedded default listens on 127.0.0.1:11112 as CXR_GATEWAY and keeps data under var/', (t) => {
  const { config, source } = loadConfig(undefined, '/srv/gw');
  t.is(source, 'embedded default');
  t.is(config.dicom.host, '127.0.0.1');
  t.is(config.dicom.port, 11112);
  t.is(config.dicom.aeTitle, 'CXR_GATEWAY');
  t.is(config.storage.dataDir, '/srv/gw/var');
  t.is(config.assembly.quietPeriodSeconds, 10);
});

test('an invalid value is reported with the full key and what is wrong', (t) => {
  const error = t.throws(() => parseConfigText('dicom:\n  port: "eleven"\n', 'site.yaml'), {
    instanceOf: GatewayError,
  });
  t.regex(error.message, /site\.yaml: dicom\.port: .*number/i);
});

test('a misspelt key is refused rather than silently ignored', (t) => {
  const error = t.throws(() => parseConfigText('dicom:\n  aetitle: X\n', 'site.yaml'));
  t.regex(error.message, /dicom\.aetitle: unknown key/);
});

test('a caller bound to a host, and AE titles longer than 16 characters are refused', (t) => {
  const ok = parseConfigText(
    'dicom:\n  callers:\n    allowAny: false\n    allowed:\n      - aeTitle: CR01\n        host: 10.1.2.3\n',
    'x',
  );
  t.deepEqual(ok.dicom.callers.allowed, [{ aeTitle: 'CR01', host: '10.1.2.3' }]);
  const error = t.throws(() => parseConfigText('dicom:\n  aeTitle: ABCDEFGHIJKLMNOPQ\n', 'x'));
  t.regex(error.message, /dicom\.aeTitle: an AE title has at most 16 characters/);
});

test('an unknown transfer syntax UID names the list entry', (t) => {
  const error = t.throws(() => parseConfigText('dicom:\n  transferSyntaxes: ["1.2.840.10008.1.2", "1.2.3"]\n', 'x'));
  t.regex(error.message, /dicom\.transferSyntaxes\.1: is not a transfer syntax/);
});

test('relative data paths in a file are relative to that file', (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'cfg-'));
  const file = path.join(dir, 'gw.yaml');
  writeFileSync(file, 'storage:\n  dataDir: ./store\n');
  t.is(loadConfig(file).config.storage.dataDir, path.join(dir, 'store'));
});

test('--config wins over the environment variable, which wins over the embedded default', (t) => {
  t.is(resolveConfigPath('a.yaml', { CXR_GATEWAY_CONFIG: 'b.yaml' }), 'a.yaml');
  t.is(resolveConfigPath(undefined, { CXR_GATEWAY_CONFIG: 'b.yaml' }), 'b.yaml');
  t.is(resolveConfigPath(undefined, {}), undefined);
});

test('the documented example config parses and equals the embedded default, option for option', (t) => {
  const example = readFileSync(path.join(repoRoot, 'config/cxr-gateway.example.yaml'), 'utf8');
  t.deepEqual(parseConfigText(example, 'example'), configSchema.parse({}));
  // Every option the schema knows appears in the example, so the documentation cannot fall behind.
  const documented = keysOf(parse(example) as Record<string, unknown>);
  const known = keysOf(configSchema.parse({}) as unknown as Record<string, unknown>);
  t.deepEqual(documented.sort(), known.sort());
});

test('check-config accepts a good file and rejects a bad one with a non-zero exit and the key', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'cfg-'));
  const good = path.join(dir, 'good.yaml');
  const bad = path.join(dir, 'bad.yaml');
  writeFileSync(good, 'dicom:\n  port: 10400\n');
  writeFileSync(bad, 'assembly:\n  quietPeriodSeconds: -1\n');
  const ok = await runCli(['check-config', good]);
  t.is(ok.code, 0);
  t.regex(ok.stdout, /"port": 10400/);
  const failed = await runCli(['check-config', bad]);
  t.is(failed.code, 1);
  t.regex(failed.stderr, /assembly\.quietPeriodSeconds/);
  const fromEnv = await runCli(['check-config'], { ...process.env, CXR_GATEWAY_CONFIG: bad });
  t.is(fromEnv.code, 1);
});

test('start with a bad config exits non-zero and names the key', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'cfg-'));
  const bad = path.join(dir, 'bad.yaml');
  writeFileSync(bad, 'dicom:\n  maxAssociations: 0\n');
  const result = await runCli(['start', '--config', bad]);
  t.is(result.code, 1);
  t.regex(result.stderr, /dicom\.maxAssociations/);
});

function keysOf(value: Record<string, unknown>, prefix = ''): string[] {
  return Object.entries(value).flatMap(([key, v]) =>
    v !== null && typeof v === 'object' && !Array.isArray(v)
      ? keysOf(v as Record<string, unknown>, `${prefix}${key}.`)
      : [`${prefix}${key}`],
  );
}

test("a site file without models: the embedded demo model resolves against the package, not the file's folder", (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'cfg-'));
  const file = path.join(dir, 'site.yaml');
  writeFileSync(file, 'dicom:\n  port: 10400\n');
  const { config } = loadConfig(file);
  t.is(config.models.demo, path.join(repoRoot, 'models', 'demo'));
  t.true(existsSync(path.join(config.models.demo ?? '', 'manifest.json')));
  // So does the embedded default, whatever the working directory.
  t.is(loadConfig(undefined, '/srv/gw').config.models.demo, path.join(repoRoot, 'models', 'demo'));
  // A models section the site wrote is the site's: relative to its file.
  writeFileSync(file, 'models:\n  demo: ./my-models/demo\n');
  t.is(loadConfig(file).config.models.demo, path.join(dir, 'my-models', 'demo'));
});

test('check-config fails, naming the key and the folder, when a model directory does not exist', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'cfg-'));
  const file = path.join(dir, 'site.yaml');
  writeFileSync(file, 'models:\n  demo: models/demo\n');
  const result = await runCli(['check-config', file]);
  t.is(result.code, 1);
  t.regex(
    result.stderr,
    new RegExp(`models\\.demo: directory ${path.join(dir, 'models', 'demo').replace(/[.]/g, '\\.')} does not exist`),
  );
  t.regex(result.stderr, /would never be processed/);
  t.notRegex(result.stdout, /valid/);
});

test('certificate, key and CA files are resolved against the config file folder (as dataDir is); absolute ones kept', (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'cxr-tls-paths-'));
  const file = path.join(dir, 'cxr-gateway.yaml');
  writeFileSync(
    file,
    [
      'dicom: { tls: { port: 2762, certFile: tls/gateway.crt, keyFile: tls/gateway.key, caFile: /etc/ca.pem } }',
      'admin: { tls: { certFile: admin.pem, keyFile: ../keys/admin.key } }',
      'audit: { syslog: { transport: tls, host: audit.example, port: 6514, caFile: tls/audit-ca.pem } }',
    ].join('\n'),
  );
  const { config } = loadConfig(file);
  t.like(config.dicom.tls, {
    certFile: path.join(dir, 'tls/gateway.crt'),
    keyFile: path.join(dir, 'tls/gateway.key'),
    caFile: '/etc/ca.pem',
  });
  t.like(config.admin.tls, { certFile: path.join(dir, 'admin.pem'), keyFile: path.join(dir, '../keys/admin.key') });
  t.like(config.audit.syslog, { caFile: path.join(dir, 'tls/audit-ca.pem') });
  writeFileSync(file, 'admin: { tls: { certFile: "-----BEGIN CERTIFICATE-----", keyFile: k.pem } }\n');
  t.throws(() => loadConfig(file), {
    message: /admin\.tls\.certFile: must name a file \(PEM\); inline PEM is not accepted/,
  });
});
