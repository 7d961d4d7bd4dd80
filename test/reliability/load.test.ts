import test from 'ava';
import { runLoad } from '../../bench/reliability/load.js';
import { figureLines, reliabilitySeed } from './seed.js';

// Full run: node dist/bench/reliability/load.js --associations 10 --images 100

test('4 associations x 25 images at once: all stored, each processed exactly once, one SC per image and one ORU per study', async (t) => {
  const seed = reliabilitySeed(14005);
  const result = await runLoad({ associations: 4, images: 25, imagesPerStudy: 5, seed, timeLimit: 90 });
  t.log(`seed ${seed}\n${figureLines(result.figures)}`);
  t.is(result.sendersOk, 4);
  t.is(result.stored, 100);
  t.is(result.processedOnce, 100);
  t.is(result.processedTwice, 0);
  t.is(result.scFiles, 100);
  t.is(result.oruFiles, result.studies);
  t.is(result.failedJobs, 0);
});
