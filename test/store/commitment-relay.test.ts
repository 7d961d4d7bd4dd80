// Storage commitment reports kept in the store for the node that waits for them (issue 20), on both engines.
import test from 'ava';
import { CommitmentRelay, type RelayedReport } from '../../src/store/commitment-relay.js';
import { openStore } from '../../src/store/open-store.js';
import { engineTests } from './engines.js';

const forEachEngine = engineTests(test);

const report = (transactionUid: string): RelayedReport => ({
  transactionUid,
  eventTypeId: 2,
  committed: [{ sopClassUid: '1.2', sopInstanceUid: '1.2.3' }],
  failed: [{ sopClassUid: '1.2', sopInstanceUid: '1.2.4', failureReason: 0x0110 }],
  via: 'new-association',
  callingAe: 'ORTHANC',
  peer: '127.0.0.1',
});

forEachEngine(
  'a report is kept once, taken once by the node asking for its transaction, and late ones expire',
  (t, location) => {
    const { store } = openStore(location, 'write');
    t.teardown(() => store.close());
    const onA = new CommitmentRelay(store.connection, 'node-a');
    const onB = new CommitmentRelay(store.connection, 'node-b');
    onA.put(report('2.25.1'), 1000);
    onA.put({ ...report('2.25.1'), committed: [] }, 1500);
    onA.put(report('2.25.2'), 2000);
    t.deepEqual(onB.take([]), []);
    t.deepEqual(
      onB.take(['2.25.1', '2.25.9']),
      [{ transactionUid: '2.25.1', report: report('2.25.1') }],
      'the first copy',
    );
    t.deepEqual(onB.take(['2.25.1']), [], 'taken once');
    t.is(onB.expire(2000), 0);
    t.is(onB.expire(2001), 1);
    t.deepEqual(onB.take(['2.25.2']), []);
  },
);

forEachEngine('a kept report that cannot be read is taken as an error naming its transaction', (t, location) => {
  const { store } = openStore(location, 'write');
  t.teardown(() => store.close());
  store.connection
    .prepare(
      `INSERT INTO commitment_reports (transaction_uid, report, received_at, received_by)
       VALUES ('2.25.3', '{"transactionUid": 3}', 1, 'node-a')`,
    )
    .run();
  const [taken] = new CommitmentRelay(store.connection, 'node-b').take(['2.25.3']);
  t.is(taken?.transactionUid, '2.25.3');
  t.true(taken?.report instanceof Error);
  t.regex(String((taken?.report as Error).message), /commitment_reports\.report of transaction 2\.25\.3/);
});
