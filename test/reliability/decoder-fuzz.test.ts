import test from 'ava';
import { runDecoderFuzz } from '../../bench/reliability/decoder-fuzz.js';
import { figureLines, reliabilitySeed } from './seed.js';

// Full run: node dist/bench/reliability/decoder-fuzz.js --inputs 10000

test('mutated pixel data of every accepted transfer syntax: each input decodes or fails with a PixelDecodeError; no crash, no hang', async (t) => {
  const seed = reliabilitySeed(14003);
  const result = await runDecoderFuzz({ inputs: 240, seed, timeout: 10, timeLimit: 90, replay: -1 });
  t.log(`seed ${seed}\n${figureLines(result.figures)}`);
  t.deepEqual(result.baseFailures, [], 'every unmutated base file decodes');
  t.is(result.inputs, 240);
  t.is(
    Object.keys(result.bySyntax).length,
    12,
    'native explicit/implicit, deflate, JPEG baseline/extended/lossless x2, JPEG-LS x2, JPEG 2000 x2, RLE',
  );
  t.is(result.crashes, 0);
  t.is(result.hangs, 0);
  t.is(result.uncleanErrors, 0, 'every failure is a PixelDecodeError with a code');
});
