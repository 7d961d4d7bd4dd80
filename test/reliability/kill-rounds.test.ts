import test from 'ava';
import { runKillRounds } from '../../bench/reliability/kill-rounds.js';
import { figureLines, reliabilitySeed } from './seed.js';

// Full run: node dist/bench/reliability/kill-rounds.js --rounds 100

test('5 rounds of kill -9 while storing and processing: every acknowledged instance ends with exactly one set of outputs', async (t) => {
  const seed = reliabilitySeed(14004);
  const result = await runKillRounds({
    rounds: 5,
    studies: 2,
    images: 3,
    maxDelay: 3000,
    seed,
    settle: 60,
    timeLimit: 100,
  });
  t.log(`seed ${seed}\n${figureLines(result.figures)}`);
  t.is(result.rounds, 5);
  t.true(result.acknowledged > 0, 'some instances were acknowledged before the kills');
  t.is(result.lost, 0, 'no acknowledged instance lost');
  t.is(result.unprocessed, 0, 'every acknowledged instance processed');
  t.is(result.duplicated, 0, 'none processed twice');
  t.true(result.ok, 'every invariant of the run holds (see the figures)');
});
