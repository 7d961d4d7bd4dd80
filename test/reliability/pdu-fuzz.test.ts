import test from 'ava';
import { runPduFuzz } from '../../bench/reliability/pdu-fuzz.js';
import { figureLines, reliabilitySeed } from './seed.js';

// 300 mutated association/P-DATA streams (every kind of bench/reliability/pdu-streams.ts) against the real daemon.
// Full run: node dist/bench/reliability/pdu-fuzz.js --streams 10000

test('300 mutated PDU streams: the daemon never dies, stores nothing after A-ASSOCIATE-RJ, closes aborted/released/rejected connections within 2 s, and a legitimate storescu succeeds after each batch', async (t) => {
  const seed = reliabilitySeed(14001);
  const result = await runPduFuzz({
    streams: 300,
    batch: 150,
    concurrency: 16,
    seed,
    maxCrashes: 3,
    timeLimit: 90,
    replay: -1,
    kind: -1,
  });
  t.log(
    `seed ${seed} (replay: node dist/bench/reliability/pdu-fuzz.js --seed ${seed} --streams 300 --batch 150)\n${figureLines(result.figures)}`,
  );
  t.is(
    result.crashes,
    0,
    `the daemon died ${result.crashes} times; streams that kill it alone: ${result.crashCulprits.join(', ') || 'none identified'}; ${JSON.stringify(result.crashReasons)}`,
  );
  t.is(result.stoppedEarly, undefined);
  t.is(result.streamsSent, 300);
  t.is(result.legitimateOk, result.legitimateRuns, 'a legitimate storescu succeeds after every batch');
  t.is(result.rejectedThenAnswered, 0, 'no C-STORE after A-ASSOCIATE-RJ is answered');
  t.is(result.storedAfterRejection, 0, 'no C-STORE after A-ASSOCIATE-RJ is stored');
  t.deepEqual(result.leftOpenAfterEnd, {}, 'abort, release and rejection close the connection within 2 s');
  t.is(result.secondAccepts, 0, 'a second A-ASSOCIATE-RQ on an association is not accepted');
  t.is(
    result.unknownCommandsMisanswered,
    0,
    'C-FIND, C-GET, N-ACTION and unknown commands get 0x0211 (or an A-ABORT); C-CANCEL gets no response',
  );
  t.is(result.maxOpenAfterBatch, 0, 'no server-side connection outlives its client by 2 s');
});

test('presentation contexts past 128, with IDs wrapping or all 255 (issue 14 item 1): the daemon answers and keeps serving', async (t) => {
  const seed = reliabilitySeed(14002);
  // kind 5 = many-contexts (STREAM_KINDS in pdu-streams.ts), serially so that a crash is pinned on its stream.
  const result = await runPduFuzz({
    streams: 6,
    batch: 6,
    concurrency: 1,
    seed,
    maxCrashes: 2,
    timeLimit: 60,
    replay: -1,
    kind: 5,
  });
  t.log(`seed ${seed}\n${figureLines(result.figures)}`);
  t.is(result.crashes, 0, `the daemon died: ${JSON.stringify(result.crashReasons)}`);
  t.is(result.legitimateOk, result.legitimateRuns);
});
