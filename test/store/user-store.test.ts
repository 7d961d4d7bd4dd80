import test from 'ava';
import { GatewayError } from '../../src/errors.js';
import { UserStore } from '../../src/store/user-store.js';
import { consoleFixture } from './console-fixtures.js';
import { engineTests } from './engines.js';

const forEachEngine = engineTests(test);

forEachEngine(
  'users: add, list without hashes, change, remove; refusals name the problem and change nothing',
  (t, location) => {
    const f = consoleFixture('users-', { location });
    t.teardown(() => f.store.close());
    const users = new UserStore(f.store.connection);
    users.addUser('alice', 'scrypt$h1', 'admin', 1000);
    users.addUser('bob@ward-3', 'scrypt$h2', 'viewer', 2000);
    t.deepEqual(users.listUsers(), [
      { name: 'alice', role: 'admin', createdAt: 1000, updatedAt: 1000, disabled: false },
      { name: 'bob@ward-3', role: 'viewer', createdAt: 2000, updatedAt: 2000, disabled: false },
    ]);
    const before = f.dump();
    t.throws(() => users.addUser('alice', 'x', 'viewer', 3000), {
      instanceOf: GatewayError,
      message: /exists already/,
    });
    t.throws(() => users.addUser('has space', 'x', 'viewer', 3000), {
      instanceOf: GatewayError,
      message: /not a console user name/,
    });
    t.throws(() => users.addUser('carol', 'x', 'root' as 'admin', 3000), {
      instanceOf: GatewayError,
      message: /not a console role/,
    });
    t.throws(() => users.setPassword('nobody', 'x', 3000), {
      instanceOf: GatewayError,
      message: /no console user 'nobody'/,
    });
    t.throws(() => users.removeUser('nobody'), { instanceOf: GatewayError, message: /no console user/ });
    t.is(f.dump(), before);
    users.setPassword('alice', 'scrypt$h3', 4000);
    t.like(users.findUser('alice'), { passwordHash: 'scrypt$h3', updatedAt: 4000 });
    users.removeUser('bob@ward-3');
    t.is(users.countUsers(), 1);
  },
);

forEachEngine('expired sessions are purged; live ones stay', (t, location) => {
  const f = consoleFixture('sessions-', { location });
  t.teardown(() => f.store.close());
  const users = new UserStore(f.store.connection);
  users.addUser('alice', 'scrypt$h1', 'admin', 0);
  const session = (tokenHash: string, expiresAt: number) =>
    users.insertSession({
      tokenHash,
      user: 'alice',
      role: 'admin',
      address: 'x',
      createdAt: 0,
      lastSeenAt: 0,
      expiresAt,
    });
  session('a', 100);
  session('b', 200);
  t.is(users.purgeExpiredSessions(150), 1);
  t.is(users.findSession('a'), undefined);
  t.like(users.findSession('b'), { user: 'alice', expiresAt: 200 });
});
