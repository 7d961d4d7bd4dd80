import test from 'ava';
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AuthService } from '../../src/admin/auth-service.js';
import { JobStore } from '../../src/store/job-store.js';
import { CLI, runCli } from '../helpers/gateway-process.js';
import type { CommandResult } from '../helpers/run-command.js';
import { consoleFixture, deliver, type ConsoleFixture } from '../store/console-fixtures.js';

// The console commands through the real CLI (a child process) on a job store filled through JobStore and
// PipelineStore, at the path the config's storage.dataDir gives, as the daemon would have left it.

interface Setup {
  configPath: string;
  dataDir: string;
  f: ConsoleFixture;
  cli: (...args: string[]) => Promise<CommandResult>;
}

function setup(t: import('ava').ExecutionContext): Setup {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'cli-console-'));
  const dataDir = path.join(dir, 'data');
  const configPath = path.join(dir, 'gateway.yaml');
  writeFileSync(
    configPath,
    [
      'storage:',
      `  dataDir: ${JSON.stringify(dataDir)}`,
      'destinations:',
      '  pacs:',
      '    - { type: folder, name: pacs, path: /nonexistent/pacs }',
      '    - { type: folder, name: pacs-idle, path: /nonexistent/idle }',
      '  ris:',
      '    - { type: folder, name: ris, path: /nonexistent/ris }',
      'rules: []',
      '',
    ].join('\n'),
  );
  const f = consoleFixture('', { file: path.join(dataDir, 'db', 'cxr-gateway.sqlite') });
  t.teardown(() => f.store.close());
  return { configPath, dataDir, f, cli: (...args) => runCli([...args, '--config', configPath]) };
}

/** A parked PACS delivery (its RIS report held back): what an AR or a long outage leaves. */
function parked(s: Setup, uid: string, at: number, accession?: string) {
  const job = s.f.study({ uid, at, accession });
  const pacs = job.deliveries['pacs:pacs'] ?? -1;
  deliver(s.f, pacs, { kind: 'parked', reason: 'pacs-refused-object: the PACS answered 0xA900' }, at + 1);
  return { jobId: job.jobId, pacs, ris: job.deliveries['ris:ris'] ?? -1 };
}

/** Runs the CLI with `input` on stdin (runCommand gives the child no stdin). */
function cliWithStdin(args: string[], input: string): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.once('error', reject);
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
    child.stdin.end(input);
  });
}

test('jobs --state parked --destination D: one line per matching job, its parked deliveries with their ids, N of TOTAL; --json keeps studies/jobs/deliveries', async (t) => {
  const s = setup(t);
  for (let i = 0; i < 3; i += 1) s.f.study({ uid: `1.${i}`, at: 1000 + i, accession: `A${i}` });
  const p = parked(s, '1.9', 2000, 'A9');

  const table = await s.cli('jobs', '--state', 'parked', '--destination', 'pacs');
  t.is(table.code, 0, table.stderr);
  const lines = table.stdout.trimEnd().split('\n');
  t.is(lines.length, 4, table.stdout);
  t.regex(lines[0] ?? '', new RegExp(`^#${p.jobId} +parked +1\\.9 +rev 0 +chest +2 parked`));
  t.regex(
    lines[1] ?? '',
    new RegExp(`pacs pacs: parked {2}delivery ${p.pacs} {2}attempts 1 {2}last error: pacs-refused-object`),
  );
  t.regex(lines[2] ?? '', new RegExp(`ris ris: parked {2}delivery ${p.ris} {2}attempts 0 {2}last error: held back`));
  t.is(lines[3], '1 of 1 job(s)');

  const all = await s.cli('jobs', '--limit', '2');
  t.regex(all.stdout, /\n2 of 4 job\(s\) \(more with --offset 2\)\n$/);

  const json = await s.cli('jobs', '--json', '--accession', 'A1');
  t.is(json.code, 0, json.stderr);
  const listing = JSON.parse(json.stdout) as {
    total: number;
    studies: Array<{ studyInstanceUid: string }>;
    jobs: Array<{
      studyInstanceUid: string;
      state: string;
      nextAttemptAt: number | null;
      code: string | null;
      accessionNumber: string;
    }>;
    deliveries: Array<{ kind: string; state: string }>;
  };
  t.is(listing.total, 1);
  t.like(listing.jobs, [
    { studyInstanceUid: '1.1', state: 'delivering', nextAttemptAt: null, code: null, accessionNumber: 'A1' },
  ]);
  t.like(listing.studies, [{ studyInstanceUid: '1.1' }]);
  t.is(listing.deliveries.length, 2);

  // Unfiltered, as scripts and the older tests read it: every job oldest first, every study (also receiving ones).
  s.f.store.recordInstance({
    sopInstanceUid: '1.8.1',
    sopClassUid: '1.2.840.10008.5.1.4.1.1.1.1',
    studyInstanceUid: '1.8',
    seriesInstanceUid: undefined,
    transferSyntaxUid: '1.2.840.10008.1.2.1',
    path: '/spool/1.8.1.dcm',
    sizeBytes: 1,
    callingAe: 'DX1',
    calledAe: 'CXR_GATEWAY',
    sourceIp: '10.1.1.1',
    associationId: 'a',
    attributes: {},
    receivedAt: 9000,
  });
  const whole = JSON.parse((await s.cli('jobs', '--json')).stdout) as typeof listing & { limit: number };
  t.like(whole, { total: 4, limit: 4 });
  t.deepEqual(
    whole.jobs.map((j) => j.studyInstanceUid),
    ['1.0', '1.1', '1.2', '1.9'],
  );
  t.is(whole.studies.length, 5);
  t.true(whole.studies.some((st) => st.studyInstanceUid === '1.8'));
});

test('jobs and deliveries refuse an unknown state, a bad number or date (exit 2 naming what is valid)', async (t) => {
  const s = setup(t);
  const state = await s.cli('jobs', '--state', 'stuck');
  t.is(state.code, 2);
  t.regex(state.stderr, /--state 'stuck' is not one of: ready, processing, delivering, done, ignored, failed, parked/);
  t.is((await s.cli('jobs', '--limit', '0')).code, 2);
  t.regex((await s.cli('jobs', '--since', 'yesterday')).stderr, /not an ISO date/);
  t.regex((await s.cli('jobs', '--frobnicate')).stderr, /Unknown option '--frobnicate'/);
  t.is((await s.cli('deliveries', '--state', 'lost')).code, 2);
  t.is((await s.cli('deliveries', 'release')).code, 2);
  t.is((await s.cli('deliveries', 'release', 'abc')).code, 2);
  t.regex((await s.cli('deliveries', 'discard', '5')).stderr, /discard needs --reason/);
  const before = await runCli(['--config', s.configPath, 'jobs', '--json']);
  t.is(before.code, 0, `--config before the command still works: ${before.stderr}`);
  t.is((JSON.parse(before.stdout) as { total: number }).total, 0);
  const help = await runCli(['deliveries', '--help']);
  t.is(help.code, 0);
  t.regex(help.stdout, /deliveries release --destination D/);
});

test('deliveries release ID: the parked delivery and its held-back report are due again, the job delivering, an audit entry as cli:<user>', async (t) => {
  const s = setup(t);
  const p = parked(s, '2.1', 1000);
  const listed = await s.cli('deliveries', '--state', 'parked');
  t.regex(listed.stdout, new RegExp(`#${p.pacs} +pacs +pacs +parked`));
  t.regex(listed.stdout, /2 of 2 delivery\(ies\)/);

  const result = await s.cli('deliveries', 'release', String(p.pacs));
  t.is(result.code, 0, result.stderr);
  t.regex(result.stdout, new RegExp(`released delivery ${p.pacs} \\(pacs to 'pacs', job #${p.jobId}\\): due now`));
  t.regex(result.stdout, new RegExp(`released delivery ${p.ris} `));
  t.like(s.f.console.delivery(p.pacs), { state: 'pending' });
  t.like(s.f.console.delivery(p.ris), { state: 'pending' });
  t.like(s.f.store.listJobs()[0], { state: 'delivering' });
  const [entry] = s.f.audit.list({ offset: 0, limit: 5 }).items;
  t.like(entry, { action: 'delivery.release', user: `cli:${os.userInfo().username}`, role: 'admin', address: 'local' });

  const audit = await s.cli('audit', '--action', 'delivery.release');
  t.regex(
    audit.stdout,
    new RegExp(
      `delivery\\.release {2}cli:${os.userInfo().username} \\(admin\\) from local {2}delivery ${p.pacs} {2}success`,
    ),
  );
  const auditJson = JSON.parse((await s.cli('audit', '--json')).stdout) as {
    total: number;
    items: Array<{ after: unknown }>;
  };
  t.is(auditJson.total, 1);
  t.deepEqual(auditJson.items[0]?.after, { state: 'pending', released: [p.pacs, p.ris] });
});

test('deliveries release/discard refusals print the code and reason (exit 1) and change nothing', async (t) => {
  const s = setup(t);
  const p = parked(s, '3.1', 1000);
  const before = s.f.dump();
  const unknown = await s.cli('deliveries', 'release', '999');
  t.is(unknown.code, 1);
  t.regex(unknown.stderr, /DELIVERY_NOT_FOUND: no delivery 999/);
  const held = await s.cli('deliveries', 'release', String(p.ris));
  t.is(held.code, 1);
  t.regex(held.stderr, new RegExp(`DELIVERY_HELD_BACK: .*release delivery ${p.pacs}`));
  const noReason = await s.cli('deliveries', 'discard', String(p.pacs), '--reason', '  ');
  t.is(noReason.code, 1);
  t.regex(noReason.stderr, /REASON_REQUIRED/);
  const nowhere = await s.cli('deliveries', 'release', '--destination', 'nowhere');
  t.is(nowhere.code, 1);
  t.regex(nowhere.stderr, /no destination 'nowhere' is configured/);
  const idle = await s.cli('deliveries', 'release', '--destination', 'pacs-idle');
  t.is(idle.code, 0, 'configured, nothing parked: not an error');
  t.regex(idle.stdout, /nothing parked for destination 'pacs-idle'/);
  t.is(s.f.dump(), before);

  // And a delivered one: 409 naming its state.
  await s.cli('deliveries', 'release', String(p.pacs));
  deliver(s.f, p.pacs, { kind: 'delivered' }, 5000);
  const again = await s.cli('deliveries', 'release', String(p.pacs));
  t.is(again.code, 1);
  t.regex(again.stderr, /DELIVERY_NOT_PARKED: delivery \d+ is delivered, not parked/);
});

test('deliveries release --destination releases every parked one; discard ID --reason settles the job', async (t) => {
  const s = setup(t);
  const a = parked(s, '4.1', 1000);
  const b = parked(s, '4.2', 2000);
  const released = await s.cli('deliveries', 'release', '--destination', 'pacs');
  t.is(released.code, 0, released.stderr);
  t.is(released.stdout.trimEnd().split('\n').length, 4);
  t.is(s.f.console.deliveries({ state: 'parked', offset: 0, limit: 10 }).total, 0);

  deliver(s.f, a.pacs, { kind: 'parked', reason: 'timeout: again' }, 3000);
  const discarded = await s.cli('deliveries', 'discard', String(a.pacs), '--reason', 'sent by hand');
  t.is(discarded.code, 0, discarded.stderr);
  t.regex(discarded.stdout, new RegExp(`discarded delivery ${a.pacs} .*discarded by cli:.*: sent by hand`));
  await s.cli('deliveries', 'discard', String(a.ris), '--reason', 'report typed in the RIS');
  const job = s.f.store.listJobs().find((j) => j.id === a.jobId);
  t.like(job, { state: 'done' });
  t.regex(job?.lastError ?? '', /discarded by cli:.*: report typed in the RIS/);
  t.like(s.f.console.delivery(b.pacs), { state: 'pending' });
  const json = JSON.parse((await s.cli('deliveries', '--state', 'discarded', '--json')).stdout) as {
    total: number;
    items: Array<Record<string, unknown>>;
  };
  t.is(json.total, 2);
  t.false('payload' in (json.items[0] ?? {}), 'no stored paths in the listing');
});

test('reprocess STUDY_UID queues the next revision; unknown or busy studies are refused (exit 1)', async (t) => {
  const s = setup(t);
  const done = s.f.study({ uid: '5.1', at: 1000, ris: [] });
  deliver(s.f, done.deliveries['pacs:pacs'] ?? -1, { kind: 'delivered' }, 1100);
  s.f.study({ uid: '5.2', at: 2000 });
  const ok = await s.cli('reprocess', '5.1');
  t.is(ok.code, 0, ok.stderr);
  t.regex(ok.stdout, /study 5\.1: revision 1 queued as job #\d+/);
  t.like(
    s.f.store.listJobs().filter((j) => j.studyInstanceUid === '5.1'),
    [
      { revision: 0, state: 'done' },
      { revision: 1, state: 'ready' },
    ],
  );
  const busy = await s.cli('reprocess', '5.2');
  t.is(busy.code, 1);
  t.regex(busy.stderr, /STUDY_BUSY: .*still delivering/);
  const unknown = await s.cli('reprocess', '9.9');
  t.regex(unknown.stderr, /STUDY_NOT_FOUND/);
  t.is((await s.cli('reprocess')).code, 2);
});

test('admin add-user with --password-stdin: the console verifies that password; weak passwords, duplicates and bad roles are refused', async (t) => {
  const s = setup(t);
  const add = await cliWithStdin(
    ['admin', 'add-user', 'alice', '--role', 'admin', '--password-stdin', '--config', s.configPath],
    'a long enough password\n',
  );
  t.is(add.code, 0, add.stderr);
  t.regex(add.stdout, /added console user 'alice' \(admin\)/);
  const auth = new AuthService(s.f.store.connection, { sessionIdleMinutes: 30, sessionMaxHours: 8 });
  t.deepEqual(await auth.verify('alice', 'a long enough password'), { user: 'alice', role: 'admin' });
  const stored = s.f.store.connection.prepare('SELECT password_hash FROM users').get() as { password_hash: string };
  t.regex(stored.password_hash, /^scrypt\$/);

  const weak = await cliWithStdin(
    ['admin', 'add-user', 'bob', '--role', 'viewer', '--password-stdin', '--config', s.configPath],
    'short\n',
  );
  t.is(weak.code, 1);
  t.regex(weak.stderr, /PASSWORD_WEAK/);
  const dup = await cliWithStdin(
    ['admin', 'add-user', 'alice', '--role', 'viewer', '--password-stdin', '--config', s.configPath],
    'another long password\n',
  );
  t.regex(dup.stderr, /USER_EXISTS/);
  const role = await s.cli('admin', 'add-user', 'carol', '--role', 'root', '--password-stdin');
  t.is(role.code, 2);
  t.regex(role.stderr, /--role 'root' is not one of: viewer, admin/);
  const noTty = await s.cli('admin', 'add-user', 'dave', '--role', 'viewer');
  t.is(noTty.code, 2);
  t.regex(noTty.stderr, /stdin is not a terminal: pass the password on stdin with --password-stdin/);

  const reset = await cliWithStdin(
    ['admin', 'set-password', 'alice', '--password-stdin', '--config', s.configPath],
    'a brand new password\n',
  );
  t.is(reset.code, 0, reset.stderr);
  t.truthy(await auth.verify('alice', 'a brand new password'));
  t.is(await auth.verify('alice', 'a long enough password'), undefined);

  const users = await s.cli('admin', 'users');
  t.regex(users.stdout, /^alice +admin +active/m);
  t.regex(users.stdout, /1 user\(s\)/);
  t.is((await s.cli('admin', 'disable-user', 'alice')).code, 0);
  t.is(await auth.verify('alice', 'a brand new password'), undefined, 'a disabled user cannot log in');
  t.regex((await s.cli('admin', 'users')).stdout, /^alice +admin +disabled/m);
  t.is((await s.cli('admin', 'enable-user', 'alice')).code, 0);
  t.truthy(await auth.verify('alice', 'a brand new password'));
  const removed = await s.cli('admin', 'remove-user', 'alice');
  t.is(removed.code, 0, removed.stderr);
  t.false(auth.hasUsers());
  t.regex((await s.cli('admin', 'remove-user', 'alice')).stderr, /USER_NOT_FOUND/);
  const trail = await s.cli('audit', '--json');
  const actions = (JSON.parse(trail.stdout) as { items: Array<{ action: string }> }).items.map((e) => e.action);
  t.deepEqual(actions, ['user.remove', 'user.enable', 'user.disable', 'user.set-password', 'user.add']);
  t.false(
    /a long enough password|a brand new password|scrypt\$/.test(trail.stdout),
    'no password nor hash in the trail',
  );
});

test('admin add-user works before the daemon ever ran (creates the job store) so the first admin can log in', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'cli-first-user-'));
  const configPath = path.join(dir, 'gateway.yaml');
  writeFileSync(configPath, `storage:\n  dataDir: ${JSON.stringify(path.join(dir, 'data'))}\n`);
  const add = await cliWithStdin(
    ['admin', 'add-user', 'first', '--role', 'admin', '--password-stdin', '--config', configPath],
    'the very first password',
  );
  t.is(add.code, 0, add.stderr);
  const store = JobStore.open(path.join(dir, 'data', 'db', 'cxr-gateway.sqlite'));
  t.teardown(() => store.close());
  t.truthy(
    await new AuthService(store.connection, { sessionIdleMinutes: 1, sessionMaxHours: 1 }).verify(
      'first',
      'the very first password',
    ),
  );
});

test('admin add-user on a terminal asks twice without echo (a real pty through script(1))', async (t) => {
  const s = setup(t);
  const command = [process.execPath, CLI, 'admin', 'add-user', 'tty-user', '--role', 'viewer', '--config', s.configPath]
    .map((a) => `'${a.replace(/'/g, `'\\''`)}'`)
    .join(' ');
  const child = spawn('script', ['-qec', command, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let seen = '';
  let answered = 0;
  const done = new Promise<number | null>((resolve, reject) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve(code);
    });
  });
  // Type each answer when its prompt has appeared (the terminal's output is the positive event).
  child.stdout.on('data', (d: Buffer) => {
    seen += d.toString();
    const prompts = (seen.match(/New password \(at least 12 characters\): |Again: /g) ?? []).length;
    while (answered < prompts) {
      answered += 1;
      child.stdin.write('typed on a terminal\r');
    }
  });
  t.is(await done, 0, seen);
  t.regex(seen, /added console user 'tty-user' \(viewer\)/);
  t.false(seen.includes('typed on a terminal'), 'the password is not echoed');
  const auth = new AuthService(s.f.store.connection, { sessionIdleMinutes: 30, sessionMaxHours: 8 });
  t.deepEqual(await auth.verify('tty-user', 'typed on a terminal'), { user: 'tty-user', role: 'viewer' });
});
