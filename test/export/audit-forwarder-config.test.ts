import test from 'ava';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { configSchema } from '../../src/config/schema.js';
import { securityWarnings } from '../../src/config/security-warnings.js';

const parse = (audit: unknown) => configSchema.safeParse({ audit });
const messages = (audit: unknown) => {
  const r = parse(audit);
  return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
};

test('audit is off by default and a syslog repository takes defaults for facility, app name and backlog alarm', (t) => {
  t.deepEqual(configSchema.parse({}).audit, {});
  const r = parse({ syslog: { transport: 'tcp', host: 'audit.example', port: 601 }, enterpriseSiteId: 'Site-1' });
  t.true(r.success);
  t.like(r.success ? r.data.audit : undefined, {
    syslog: { transport: 'tcp', facility: 10, appName: 'cxr-gateway', backlogAlarmMinutes: 15 },
    enterpriseSiteId: 'Site-1',
  });
});

test('audit.syslog refuses inline certificate files, TLS files without tls, and a certificate without its key', (t) => {
  // A relative file is fine: load-config resolves it against the config file's folder (test/config/load-config).
  t.deepEqual(messages({ syslog: { transport: 'tls', host: 'a', port: 6514, caFile: 'ca.pem' } }), []);
  t.regex(
    messages({
      syslog: { transport: 'tls', host: 'a', port: 6514, caFile: '-----BEGIN CERTIFICATE-----\nMII' },
    }).join(),
    /inline PEM is not accepted/,
  );
  t.regex(
    messages({ syslog: { transport: 'udp', host: 'a', port: 514, caFile: '/ca.pem' } }).join(),
    /caFile is used only with transport: tls/,
  );
  t.regex(
    messages({ syslog: { transport: 'tls', host: 'a', port: 6514, certFile: '/c.pem' } }).join(),
    /certFile and keyFile go together/,
  );
  t.regex(messages({ syslog: { transport: 'tcp', host: 'a', port: 601, appName: 'cxr gateway' } }).join(), /APP-NAME/);
  t.regex(messages({ syslog: { transport: 'smtp', host: 'a', port: 25 } }).join(), /audit\.syslog\.transport/);
  t.regex(messages({ syslog: { transport: 'tcp', host: 'a', port: 601, extra: 1 } }).join(), /audit\.syslog/);
});

test('warnings: clear text toward another machine, and a key file readable by group or others; none when safe', (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'cxr-audit-warn-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const key = path.join(dir, 'gateway.key');
  writeFileSync(key, 'not really a key');
  chmodSync(key, 0o640);
  // The audit part of the one set of security warnings (config/security-warnings.ts).
  const warn = (syslog?: Record<string, unknown>) =>
    securityWarnings(configSchema.parse(syslog === undefined ? {} : { audit: { syslog } }))
      .filter((w) => w.key.startsWith('audit.'))
      .map((w) => `${w.code}: ${w.message}`);
  t.deepEqual(warn(), []);
  t.deepEqual(warn({ transport: 'tcp', host: '127.0.0.1', port: 601 }), []);
  t.regex(warn({ transport: 'udp', host: 'audit.example', port: 514 }).join(), /^tls-off: .*audit\.example over udp/);
  const tlsWithKey = { transport: 'tls', host: 'audit.example', port: 6514, certFile: key, keyFile: key };
  t.regex(
    warn(tlsWithKey).join(),
    /^key-file-readable: audit\.syslog\.keyFile .*gateway\.key is readable by its group/,
  );
  chmodSync(key, 0o600);
  t.deepEqual(warn(tlsWithKey), []);
});
