import test from 'ava';
import { AuthService, tokenHash } from '../../src/admin/auth-service.js';
import { checkPasswordRule, hashPassword, verifyPassword } from '../../src/admin/passwords.js';
import { GatewayError } from '../../src/errors.js';
import { UserStore } from '../../src/store/user-store.js';
import { consoleFixture } from '../store/console-fixtures.js';

const PASSWORD = 'correct horse battery';

async function setup(t: import('ava').ExecutionContext) {
  const f = consoleFixture('auth-');
  t.teardown(() => f.store.close());
  let clock = 1_000_000;
  const users = new UserStore(f.store.connection);
  const auth = new AuthService(f.store.connection, {
    sessionIdleMinutes: 30,
    sessionMaxHours: 8,
    now: () => clock,
  });
  const advance = (ms: number) => (clock += ms);
  return { f, users, auth, advance, now: () => clock };
}

test('passwords: scrypt with its parameters in the stored text, a fresh salt each time, malformed hashes never match', async (t) => {
  const a = await hashPassword(PASSWORD);
  const b = await hashPassword(PASSWORD);
  t.regex(a, /^scrypt\$32768\$8\$1\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]{44}$/);
  t.not(a, b, 'salted');
  t.true(await verifyPassword(PASSWORD, a));
  t.false(await verifyPassword(`${PASSWORD}!`, a));
  t.false(await verifyPassword(PASSWORD, 'plain text'));
  t.false(await verifyPassword(PASSWORD, a.replace('$32768$', '$1073741824$')), 'a tampered cost is refused, not run');
  t.throws(() => checkPasswordRule('short pass'), { instanceOf: GatewayError, message: /12 to 1024 characters/ });
  t.notThrows(() => checkPasswordRule('twelve chars'));
});

test('verify: the right password gives the user and role; a wrong password, an unknown or disabled user give nothing', async (t) => {
  const { users, auth, now } = await setup(t);
  t.false(auth.hasUsers());
  users.addUser('alice', await hashPassword(PASSWORD), 'admin', now());
  users.addUser('victor', await hashPassword(PASSWORD), 'viewer', now());
  t.true(auth.hasUsers());
  t.deepEqual(await auth.verify('alice', PASSWORD), { user: 'alice', role: 'admin' });
  t.deepEqual(await auth.verify('victor', PASSWORD), { user: 'victor', role: 'viewer' });
  t.is(await auth.verify('alice', 'wrong password!'), undefined);
  t.is(await auth.verify('mallory', PASSWORD), undefined);
  users.setDisabled('victor', true, now());
  t.is(await auth.verify('victor', PASSWORD), undefined);
});

test('sessions: the token is stored only as its SHA-256, slides with use, ends when idle, at the absolute limit, at logout', async (t) => {
  const { f, users, auth, advance } = await setup(t);
  users.addUser('alice', await hashPassword(PASSWORD), 'admin', 0);
  const token = auth.createSession('alice', 'admin', '10.0.0.7');
  t.regex(token, /^[A-Za-z0-9_-]{43}$/, '32 random bytes, base64url');
  const rows = f.store.connection.prepare('SELECT * FROM sessions').all() as Array<Record<string, unknown>>;
  t.is(rows.length, 1);
  t.is(rows[0]?.token_hash, tokenHash(token));
  t.false(JSON.stringify(rows).includes(token), 'the token itself is not stored');

  const first = auth.session(token);
  t.like(first, { user: 'alice', role: 'admin', createdAt: 1_000_000, expiresAt: 1_000_000 + 30 * 60_000 });
  // Used every 20 minutes: alive past the idle limit, until the 8-hour limit.
  for (let i = 0; i < 23; i += 1) {
    advance(20 * 60_000);
    t.truthy(auth.session(token), `alive after ${(i + 1) * 20} minutes of use`);
  }
  advance(20 * 60_000); // 8 h after login
  t.is(auth.session(token), undefined, 'absolute limit');
  t.is((f.store.connection.prepare('SELECT COUNT(*) AS n FROM sessions').get() as { n: number }).n, 0);

  const idle = auth.createSession('alice', 'admin', '10.0.0.7');
  advance(30 * 60_000 - 1);
  t.truthy(auth.session(idle));
  advance(30 * 60_000);
  t.is(auth.session(idle), undefined, 'idle limit');

  const ended = auth.createSession('alice', 'admin', '10.0.0.7');
  auth.endSession(ended);
  t.is(auth.session(ended), undefined);
  t.is(auth.session('not-a-token'), undefined);
});

test('sessions follow the user: a role change, new password, disabling or removal ends them', async (t) => {
  const { users, auth, now } = await setup(t);
  users.addUser('alice', await hashPassword(PASSWORD), 'admin', now());
  const a = auth.createSession('alice', 'admin', 'x');
  users.setRole('alice', 'viewer', now());
  t.is(auth.session(a), undefined);
  const b = auth.createSession('alice', 'viewer', 'x');
  users.setPassword('alice', await hashPassword('another long password'), now());
  t.is(auth.session(b), undefined);
  const c = auth.createSession('alice', 'viewer', 'x');
  users.setDisabled('alice', true, now());
  t.is(auth.session(c), undefined);
  users.setDisabled('alice', false, now());
  const d = auth.createSession('alice', 'viewer', 'x');
  users.removeUser('alice');
  t.is(auth.session(d), undefined);
});
