import test from 'ava';
import { runDiskFull } from '../../bench/reliability/disk-full.js';
import { figureLines, reliabilitySeed } from './seed.js';

// Needs root (mount -t tmpfs). Full run: node dist/bench/reliability/disk-full.js --images 120

test('disk full on a tmpfs: stores that cannot be made durable answer A7xx, no Success is lost, no orphan files; outputs written while full are delivered once space returns', async (t) => {
  const seed = reliabilitySeed(14007);
  const result = await runDiskFull({
    sizeMb: 8,
    images: 80,
    studies: 4,
    // A job that met the full disk retries on a backoff that doubles up to 60 s (the pipeline's spaceRetry), so one that
    // met it several times may next look a minute after space returns: wait past that (it ends as soon as all is in).
    settle: 75,
    headroomKb: 384,
    phase2SizeMb: 24,
    phase2Rows: 512,
    holdSeconds: 2,
    tightTries: 6,
    seed,
  });
  t.log(`seed ${seed}\n${figureLines(result.figures)}`);
  t.true(
    Object.keys(result.statuses).some((s) => s !== '0x0000'),
    'the disk filled up during the stores',
  );
  t.is(result.nonA7Failures, 0, 'every refused store answered A7xx');
  t.is(result.successThenLost, 0);
  t.is(result.orphans, 0);
  t.is(result.orphansAfterRestart, 0);
  t.is(
    result.phase2Delivered,
    result.phase2Expected,
    'every study written while the disk was full was delivered after space returned',
  );
  t.true(result.ok, 'every invariant of the run holds (see the figures)');
});
