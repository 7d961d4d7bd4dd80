// The audit trail on a PostgreSQL store shared by several nodes (issue 20): entries are numbered in commit order, so
// the forwarder's cursor never passes over one that commits late, and one node at a time forwards, so no row is sent
// twice by two nodes reading the same rows.
import test from 'ava';
import { AuditForwarder, type SyslogPort } from '../../src/export/audit-forwarder.js';
import type { Logger } from '../../src/logging/logger.js';
import { AUDIT_ORDER_LOCK_KEY, AuditForwarding, AuditTrail, type AuditRecord } from '../../src/store/audit-trail.js';
import { openStore, type StoreLocation } from '../../src/store/open-store.js';
import { otherSession, startPostgres, type PostgresUnderTest } from '../helpers/postgres.js';
import { waitUntil } from '../helpers/wait-until.js';

let cluster: PostgresUnderTest | undefined;
test.before(async () => {
  cluster = await startPostgres();
});
test.after.always(async () => {
  await cluster?.stop();
});

async function location(): Promise<StoreLocation & { url: string }> {
  const url = await (cluster as PostgresUnderTest).createDatabase();
  return { engine: 'postgres', url, statementTimeoutMs: 30_000, connectTimeoutMs: 10_000 };
}

const quiet: Logger = { error: () => {}, warn: () => {}, info: () => {}, debug: () => {} };

function entry(n: number): AuditRecord {
  return {
    category: 'dicom',
    action: 'association.accepted',
    user: `MODALITY${n}`,
    role: null,
    address: '127.0.0.1',
    target: null,
    outcome: 'success',
  };
}

test.serial(
  "an entry another node commits late is not passed over by the cursor: this node's entry waits for it and takes the next id",
  async (t) => {
    const where = await location();
    const { store } = openStore(where, 'write');
    t.teardown(() => store.close());
    const forwarding = new AuditForwarding(store.connection, 'syslog');
    t.is(forwarding.open(1), 0);
    // The other node records an entry and its transaction stays open a moment (psql: another session), as
    // AuditTrail.record does it there: the order lock, then the insert.
    const other = await otherSession(
      where.url,
      `SELECT pg_advisory_xact_lock(${AUDIT_ORDER_LOCK_KEY.toString()});
       INSERT INTO audit_events (at, category, action, "user", role, address, target, outcome)
         VALUES (1000, 'dicom', 'association.accepted', 'OTHER_NODE', NULL, '127.0.0.1', NULL, 'success')`,
      { table: 'audit_events', holdSeconds: 1.5, db: store.connection },
    );

    // This node's entry waits for the other's commit, then takes the next id. The forwarder reads at once (and
    // advances past what it read), and again once the other session is done: it has both, in commit order.
    const mine = new AuditTrail(store.connection).record(entry(1), 2000);
    const first = forwarding.next(10);
    const last = first.at(-1);
    if (last !== undefined) forwarding.advance(last.id, 3000);
    t.is(await other.exited, 0, other.stderr());
    const rows = [...first, ...forwarding.next(10)];
    t.deepEqual(
      rows.map((r) => r.user),
      ['OTHER_NODE', 'MODALITY1'],
      'both, none passed over',
    );
    t.is(rows[1]?.id, mine);
  },
);

test.serial('one node forwards a pass at a time; the other leads once it is done', async (t) => {
  const where = await location();
  const a = openStore(where, 'write').store;
  const b = openStore(where, 'write').store;
  t.teardown(() => {
    a.close();
    b.close();
  });
  const onA = new AuditForwarding(a.connection, 'syslog');
  const onB = new AuditForwarding(b.connection, 'syslog');
  t.true(onA.lead());
  t.false(onB.lead(), 'a holds the channel');
  t.true(new AuditForwarding(b.connection, 'other-channel').lead(), 'per channel');
  onA.unlead();
  t.true(onB.lead());
  onB.unlead();
});

test.serial('two nodes forwarding one trail send every entry exactly once, in order', async (t) => {
  const where = await location();
  const stores = [openStore(where, 'write').store, openStore(where, 'write').store];
  t.teardown(() => stores.forEach((s) => s.close()));
  const sent: number[] = [];
  const sender = (): SyslogPort => ({
    description: 'test://memory',
    send: async (message) => {
      // A send takes a moment: the other node would read the same rows meanwhile, were it not for the lead.
      await new Promise((resolve) => setTimeout(resolve, 2));
      sent.push(Number(message.toString('utf8').match(/\[meta sequenceId="(\d+)"\]/)?.[1]));
    },
    close: () => {},
  });
  const forwarders = stores.map(
    (s) =>
      new AuditForwarder({
        forwarding: new AuditForwarding(s.connection, 'syslog'),
        sender: sender(),
        logger: quiet,
        header: { facility: 10, appName: 'cxr-gateway', hostname: 'gw' },
        source: { sourceId: 'CXR_GATEWAY', aeTitle: 'CXR_GATEWAY' },
        pollMs: 5,
        batch: 7,
      }),
  );
  await Promise.all(forwarders.map((f) => f.start()));
  t.teardown(() => Promise.all(forwarders.map((f) => f.stop(Date.now() + 5000))));
  const ids: number[] = [];
  for (let n = 0; n < 60; n += 1)
    ids.push(new AuditTrail(stores[n % 2]?.connection ?? stores[0]!.connection).record(entry(n), 1000 + n));
  await waitUntil(() => sent.length >= ids.length, 'every entry sent');
  t.deepEqual(sent, ids, 'each once, in id order');
});
