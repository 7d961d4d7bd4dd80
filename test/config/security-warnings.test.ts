import test from 'ava';
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { configSchema, type GatewayConfig } from '../../src/config/schema.js';
import { isLoopbackHost, securityWarnings, type SecurityInput } from '../../src/config/security-warnings.js';
import { runCli, writeGatewayConfig } from '../helpers/gateway-process.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'security-warnings-'));

/** A key file with the given mode (the content does not matter to the check). */
function keyFile(name: string, mode: number): string {
  const file = path.join(dir, name);
  writeFileSync(file, 'not a real key\n');
  chmodSync(file, mode);
  return file;
}

const parse = (input: unknown): GatewayConfig => configSchema.parse(input);
const codes = (config: SecurityInput) => securityWarnings(config).map((w) => `${w.code} ${w.key}`);

const SAFE = {
  dicom: { host: '0.0.0.0', callers: { allowAny: false, allowed: [{ aeTitle: 'MODALITY1' }] } },
  destinations: {
    pacs: [{ type: 'dicom', name: 'pacs', host: '127.0.0.1', port: 104, aeTitle: 'PACS' }],
    ris: [
      {
        type: 'mllp',
        name: 'ris',
        host: '10.1.2.3',
        port: 2575,
        tls: { caFile: '/etc/ca.pem', certFile: '/etc/c.pem', keyFile: keyFile('safe.key', 0o600) },
      },
    ],
  },
  admin: { host: '127.0.0.1' },
  rules: [],
};

test('a safe config (open listener with a caller list, TLS to the remote RIS, key 0600, admin on loopback): no warnings', (t) => {
  t.deepEqual(securityWarnings(parse(SAFE)), []);
});

test('the default config (everything on loopback) gives no warnings', (t) => {
  t.deepEqual(securityWarnings(parse({})), []);
});

test('a DICOM listener on a non-loopback address with callers.allowAny: true', (t) => {
  t.deepEqual(codes(parse({ ...SAFE, dicom: { host: '0.0.0.0', callers: { allowAny: true } } })), [
    'listener-open-to-any dicom.host',
  ]);
  // allowAny on loopback is the default and fine: only local processes reach it.
  t.deepEqual(codes(parse({ ...SAFE, dicom: { host: '127.0.0.1', callers: { allowAny: true } } })), []);
  // The "dicom-tls" part's TLS listener, when it names a host of its own.
  const withTls = { ...parse({ ...SAFE, dicom: { host: '127.0.0.1', callers: { allowAny: true } } }) };
  t.deepEqual(codes({ ...withTls, dicom: { ...withTls.dicom, tls: { host: '10.0.0.5', port: 2762 } } }), [
    'listener-open-to-any dicom.tls.host',
  ]);
});

test('TLS off toward a non-loopback RIS, and toward a PACS (plain, or tls.enabled: false) and the syslog target', (t) => {
  const config = parse({
    ...SAFE,
    destinations: {
      pacs: [{ type: 'dicom', name: 'pacs', host: 'pacs.hospital.example', port: 104, aeTitle: 'PACS' }],
      ris: [
        { type: 'mllp', name: 'ris', host: '10.1.2.3', port: 2575 },
        { type: 'mllp', name: 'ris-local', host: '127.0.0.1', port: 2575 },
        { type: 'folder', name: 'ris-folder', path: '/tmp/x' },
      ],
    },
  });
  t.deepEqual(codes(config), ['tls-off destinations.pacs.0.tls', 'tls-off destinations.ris.0.tls']);
  const disabled: SecurityInput = {
    ...config,
    destinations: {
      pacs: [{ type: 'dicom', name: 'pacs', host: '10.9.9.9', tls: { enabled: false } }],
      ris: [],
    },
  };
  t.deepEqual(codes(disabled), ['tls-off destinations.pacs.0.tls']);
  const withSyslog = (transport: string, host = '10.4.4.4'): SecurityInput => ({
    ...parse(SAFE),
    audit: { syslog: { host, transport } },
  });
  t.deepEqual(codes(withSyslog('udp')), ['tls-off audit.syslog.transport']);
  t.deepEqual(codes(withSyslog('tcp')), ['tls-off audit.syslog.transport']);
  t.deepEqual(codes(withSyslog('tls')), []);
  t.deepEqual(codes(withSyslog('udp', '127.0.0.1')), []);
});

test('verifyServer: false is named even toward a TLS destination', (t) => {
  const config = parse({
    ...SAFE,
    destinations: {
      pacs: [],
      ris: [{ type: 'mllp', name: 'ris', host: '10.1.2.3', port: 2575, tls: { verifyServer: false } }],
    },
  });
  t.deepEqual(codes(config), ['tls-unverified destinations.ris.0.tls.verifyServer']);
});

test('a key file readable by group or others, wherever a *keyFile key sits; a missing file is not this check', (t) => {
  const group = keyFile('group.key', 0o640);
  const world = keyFile('world.key', 0o604);
  const config = parse({
    ...SAFE,
    destinations: {
      pacs: [],
      ris: [
        { type: 'mllp', name: 'a', host: '10.1.2.3', port: 1, tls: { certFile: 'c', keyFile: group } },
        { type: 'mllp', name: 'b', host: '10.1.2.3', port: 2, tls: { certFile: 'c', keyFile: world } },
        { type: 'mllp', name: 'c', host: '10.1.2.3', port: 3, tls: { certFile: 'c', keyFile: '/nonexistent.key' } },
      ],
    },
    admin: { host: '127.0.0.1', tls: { certFile: 'c', keyFile: keyFile('admin.key', 0o644) } },
  });
  const warnings = securityWarnings(config);
  t.deepEqual(
    warnings.map((w) => `${w.code} ${w.key}`),
    [
      'key-file-readable destinations.ris.0.tls.keyFile',
      'key-file-readable destinations.ris.1.tls.keyFile',
      'key-file-readable admin.tls.keyFile',
    ],
  );
  t.regex(warnings[0]?.message ?? '', /readable by its group \(mode 640\)/);
  t.regex(warnings[1]?.message ?? '', /readable by others \(mode 604\)/);
  t.regex(warnings[2]?.message ?? '', /its group and others \(mode 644\)/);
  // Another part's key (e.g. audit.syslog.tls.clientKeyFile) is found by its name alone.
  const other: SecurityInput = { ...parse(SAFE), audit: { syslog: { host: '127.0.0.1', transport: 'tls' } } };
  (other as unknown as Record<string, unknown>).syslogTls = { clientKeyFile: world };
  t.deepEqual(codes(other), ['key-file-readable syslogTls.clientKeyFile']);
});

test('the admin port on a non-loopback address without admin.tls; with it, none', (t) => {
  t.deepEqual(codes(parse({ ...SAFE, admin: { host: '0.0.0.0' } })), ['admin-plain-http admin.tls']);
  t.deepEqual(
    codes(parse({ ...SAFE, admin: { host: '0.0.0.0', tls: { certFile: 'c', keyFile: keyFile('a2.key', 0o600) } } })),
    [],
  );
  t.deepEqual(codes(parse({ ...SAFE, admin: { host: '0.0.0.0', enabled: false } })), []);
});

test('isLoopbackHost: 127/8, ::1, localhost are loopback; 0.0.0.0, ::, a LAN address are not', (t) => {
  for (const h of ['127.0.0.1', '127.3.2.1', '::1', 'localhost', 'LOCALHOST', '::ffff:127.0.0.1'])
    t.true(isLoopbackHost(h), h);
  for (const h of ['0.0.0.0', '::', '10.0.0.1', 'ris.example.org', '128.0.0.1']) t.false(isLoopbackHost(h), h);
});

test('check-config prints each warning on stderr and still exits 0 with the file valid', async (t) => {
  const { configPath } = await writeGatewayConfig({
    dicom: { host: '0.0.0.0', callers: { allowAny: true } },
    admin: { host: '0.0.0.0', port: 0 },
  });
  const result = await runCli(['check-config', configPath]);
  t.is(result.code, 0, result.stderr);
  t.regex(result.stdout, /: valid/);
  t.regex(
    result.stderr,
    /warning: security: dicom\.host is 0\.0\.0\.0, not loopback, and dicom\.callers\.allowAny is true/,
  );
  t.regex(result.stderr, /warning: security: admin\.host is 0\.0\.0\.0, not loopback, without admin\.tls/);
});
