// The WASM frame encoder's refusals: what it cannot encode fails with a catalogue code (IMAGE_ENCODE_FAILED) naming
// the codec and frame, and options it does not take are refused before the WASM module sees them.
import test from 'ava';
import { GatewayError } from '../../src/errors.js';
import { encodeFrame, initFrameEncoders } from '../../src/imaging/frame-encoder.js';
import { encodeFrame as encodePhantomFrame } from '../../src/phantoms/frame-encoder.js';

test.before(async () => {
  await initFrameEncoders();
});

const grey = (bitsStored: number) =>
  ({
    kind: 'grey16',
    pixels: new Uint16Array(16),
    rows: 4,
    columns: 4,
    bitsStored,
    photometric: 'MONOCHROME2',
  }) as const;

test('a frame the codec cannot take fails with IMAGE_ENCODE_FAILED, naming the codec and the frame size', (t) => {
  const error = t.throws(() => encodeFrame(grey(17), 'jpeg-lossless'), { instanceOf: GatewayError });
  t.is(error?.code, 'IMAGE_ENCODE_FAILED');
  t.regex(error?.message ?? '', /jpeg-lossless encoder failed on a 4 x 4 frame/);
});

test('the phantom writer reports the same failure as PHANTOMS_ENCODE_FAILED with its own advice', (t) => {
  const error = t.throws(
    () =>
      encodePhantomFrame(
        { pixels: new Uint16Array(16), rows: 0, columns: 4, bitsStored: 16, photometric: 'MONOCHROME2' },
        'jpeg-ls-lossless',
      ),
    { instanceOf: GatewayError },
  );
  t.is(error?.code, 'PHANTOMS_ENCODE_FAILED');
  t.regex(error?.message ?? '', /--syntax explicit/);
});

test('jpeg-baseline takes 8-bit RGB only, with a quality from 1 to 100', (t) => {
  t.throws(() => encodeFrame(grey(8), 'jpeg-baseline'), { instanceOf: RangeError });
  const rgb = { kind: 'rgb8', pixels: new Uint8Array(4 * 4 * 3), rows: 4, columns: 4 } as const;
  for (const quality of [0, 101, 50.5])
    t.throws(() => encodeFrame(rgb, 'jpeg-baseline', { quality }), { instanceOf: RangeError });
  t.true(encodeFrame(rgb, 'jpeg-baseline', { quality: 1 }).length > 0);
});
