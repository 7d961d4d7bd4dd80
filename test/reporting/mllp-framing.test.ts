import test from 'ava';
import { GatewayError } from '../../src/errors.js';
import { frameMessage, MllpDeframer } from '../../src/reporting/mllp-framing.js';

test('frames a message as 0x0B + message + 0x1C 0x0D', (t) => {
  const frame = frameMessage('MSH|^~\\&\rPID|1\r');
  t.deepEqual([...frame.subarray(0, 1)], [0x0b]);
  t.is(frame.subarray(1, -2).toString(), 'MSH|^~\\&\rPID|1\r');
  t.deepEqual([...frame.subarray(-2)], [0x1c, 0x0d]);
});

test('encodes UTF-8 by default and Latin-1 on request', (t) => {
  t.is(frameMessage('Ä').length, 1 + 2 + 2);
  t.is(frameMessage('Ä', 'latin1').length, 1 + 1 + 2);
});

test('refuses a message that contains a frame byte', (t) => {
  t.throws(() => frameMessage('MSH|\x1c'), { instanceOf: GatewayError, code: 'MLLP_FRAME_BYTES_IN_MESSAGE' });
});

test('reassembles frames split over chunks and several frames in one chunk', (t) => {
  const deframer = new MllpDeframer();
  const bytes = Buffer.concat([frameMessage('first'), frameMessage('second'), frameMessage('third')]);
  const frames: string[] = [];
  for (let i = 0; i < bytes.length; i += 3) frames.push(...deframer.push(bytes.subarray(i, i + 3)).frames.map(String));
  t.deepEqual(frames, ['first', 'second', 'third']);
});

test('skips bytes between frames, accepts a frame ended by 0x1C alone, and restarts on a 0x0B inside a frame', (t) => {
  const deframer = new MllpDeframer();
  const { frames } = deframer.push(Buffer.from('\r\n junk\x0bone\x1c\x0bbroken\x0btwo\x1c\r'));
  t.deepEqual(frames.map(String), ['one', 'two']);
});

test('drops a frame that grows past the limit and says so', (t) => {
  const deframer = new MllpDeframer(10);
  t.deepEqual(deframer.push(Buffer.from('\x0b12345')), { frames: [], tooLarge: false });
  t.true(deframer.push(Buffer.from('6789012')).tooLarge);
  t.deepEqual(deframer.push(Buffer.from('\x0bok\x1c\r')).frames.map(String), ['ok']);
});
