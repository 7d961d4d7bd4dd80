// docs/haproxy-cxr-gateway.cfg is checked by Debian's haproxy itself (`haproxy -c`), so the sample an admin copies
// is a config HAProxy accepts; and it keeps the choices docs/cluster.md explains (health on /readyz of the admin
// port, TCP mode, no shutdown-sessions).
import test from 'ava';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { packageRoot } from '../../src/reporting/package-root.js';
import { runCommand } from '../helpers/run-command.js';

const SAMPLE = path.join(packageRoot(), 'docs/haproxy-cxr-gateway.cfg');
const HAPROXY = ['/usr/sbin/haproxy', '/usr/bin/haproxy'].find((p) => existsSync(p));

function haproxy(): string {
  if (HAPROXY === undefined)
    throw new Error("Debian's haproxy is not installed (apt-get install haproxy; .ci/run installs it)");
  return HAPROXY;
}

test('haproxy -c accepts the sample config', async (t) => {
  const checked = await runCommand(haproxy(), ['-c', '-f', SAMPLE], { timeoutMs: 30_000 });
  t.is(checked.code, 0, checked.stderr + checked.stdout);
  t.regex(checked.stdout + checked.stderr, /Configuration file is valid/);
});

test('haproxy -c refuses a broken copy of it (the check can fail)', async (t) => {
  const broken = path.join(mkdtempSync(path.join(os.tmpdir(), 'haproxy-')), 'broken.cfg');
  writeFileSync(broken, readFileSync(SAMPLE, 'utf8').replace('balance leastconn', 'balance no-such-algorithm'));
  const checked = await runCommand(haproxy(), ['-c', '-f', broken], { timeoutMs: 30_000 });
  t.not(checked.code, 0);
  t.regex(checked.stdout + checked.stderr, /balance only supports/);
});

test('the sample checks /readyz on the admin port, in TCP mode, and never cuts associations in progress', (t) => {
  const lines = readFileSync(SAMPLE, 'utf8')
    .split('\n')
    .map((l) => l.replace(/#.*/, '').trim())
    .filter((l) => l !== '');
  t.true(lines.includes('mode tcp'));
  t.true(lines.includes('option httpchk'));
  t.true(lines.some((l) => /^http-check send meth GET uri \/readyz\b/.test(l)));
  t.true(lines.includes('http-check expect status 200'));
  const servers = lines.filter((l) => l.startsWith('server '));
  t.is(servers.length, 2);
  for (const s of servers) t.regex(s, /:11112 port 11180$/, 'DICOM port, checked on the admin port');
  t.false(
    lines.some((l) => l.includes('shutdown-sessions')),
    'on-marked-down shutdown-sessions would cut associations',
  );
});
