import test from 'ava';
import { runIdleFlood } from '../../bench/reliability/idle-flood.js';
import { figureLines, reliabilitySeed } from './seed.js';

// Full run: node dist/bench/reliability/idle-flood.js --sockets 300
// maxAssociations 4 makes the old socket cap (4 x 2 + 4 = 12) smaller than the 30 flood sockets.

test('30 idle, slow-loris and rejected sockets held open: a legitimate storescu succeeds within 5 s and rejected connections are closed', async (t) => {
  const seed = reliabilitySeed(14006);
  const result = await runIdleFlood({ sockets: 30, maxAssociations: 4, giveUp: 40, seed });
  t.log(`seed ${seed}\n${figureLines(result.figures)}`);
  t.true(result.legitimateOk, 'the legitimate store succeeded at all');
  t.true(
    result.secondsToSuccess !== undefined && result.secondsToSuccess <= 5,
    `the legitimate store took ${result.secondsToSuccess ?? 'more than 40'} s`,
  );
  t.true(result.ok, 'every invariant of the run holds (see the figures)');
});
