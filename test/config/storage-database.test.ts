// storage.database and storage.postgres (issue 20): SQLite stays the default; a PostgreSQL URL never holds a password.
import test from 'ava';
import { configSchema } from '../../src/config/schema.js';

const storage = (s: Record<string, unknown>) => configSchema.safeParse({ storage: s });

test('without storage.database the store is the embedded SQLite file, with the PostgreSQL defaults unused', (t) => {
  const config = configSchema.parse({});
  t.is(config.storage.database, undefined);
  t.deepEqual(config.storage.postgres, { statementTimeoutSeconds: 30, connectTimeoutSeconds: 10 });
});

test('postgres:// and postgresql:// URLs are taken, with a password file', (t) => {
  for (const url of ['postgres://cxr@db:5432/cxr', 'postgresql://cxr@127.0.0.1/cxr']) {
    const parsed = storage({ database: url, postgres: { passwordFile: 'pw' } });
    t.true(parsed.success, url);
  }
});

test('a URL with a password in it is refused, and the error does not repeat the password', (t) => {
  const parsed = storage({ database: 'postgres://cxr:Hunter2secret@db/cxr' });
  t.false(parsed.success);
  const text = JSON.stringify(parsed.error?.issues);
  t.regex(text, /passwordFile/);
  t.false(text.includes('Hunter2secret'));
});

test('another scheme, or no URL at all, is refused', (t) => {
  t.false(storage({ database: 'mysql://cxr@db/cxr' }).success);
  t.false(storage({ database: 'var/db.sqlite' }).success);
  t.false(storage({ postgres: { statementTimeoutSeconds: 0 } }).success);
});
