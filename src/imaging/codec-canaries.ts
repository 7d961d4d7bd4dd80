// Known-good frames, one per decoder, for checking that the WASM module still works after a decoder failed on a
// damaged stream. Each is the same 8 x 8 image, 16 bits allocated, 12 stored, unsigned, pixel (x, y) =
// (509 x + 1031 y) mod 4096, encoded losslessly by dcmjs-codecs 0.0.8's own encoders (encodeRle, encodeJpeg,
// encodeJpegLs, encodeJpeg2000, encodeHtJpeg2000, encodeJpegXl with { lossy: false }).

import type { FrameCodec } from './transfer-syntaxes.js';

export const CANARY_SIZE = 8;
export const CANARY_BITS_STORED = 12;

/** The canary's pixel at (x, y). */
export function canaryPixel(x: number, y: number): number {
  return (x * 509 + y * 1031) & 0xfff;
}

export const CANARY_STREAMS_BASE64: Record<FrameCodec, string> = {
  rle:
    'AgAAAEAAAACCAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAD8AAQMFBwkLDQQG' +
    'CAkLDQ8BCAoMDgABAwUMDgACBAYICgACBAYICgwOBAYICgwOAAIICgwOAAIEBgwOAAIEBggKAD8A/fr39PHu6wcEAf77+PXyDgsI' +
    'BQL//PkVEg8MCQYDABwZFhMQDQoHIyAdGhcUEQ4qJyQhHhsYFTEuKyglIh8cAA==',
  jpeg:
    '/9j/4AAQSkZJRgABAQAAAQABAAD/wwALDAAIAAgBAREA/8QAFgABAQEAAAAAAAAAAAAAAAAACQwL/9oACAEBAAEAAJ/9/X9f1/X9' +
    'f1/dAd/X9f1/X9f2H80B39f1/Yfx/X9f3QHf2H8f1/X9f1/ZAZ/X9f1/X9f1/dAd/X9f1/X9h/H90B39f1/Yfx/X9f3QHf2H8f1/' +
    'X9f1/f/Z',
  'jpeg-ls':
    '/9j/9wALEAAIAAgBAREA//gADQH//wASAEMBFABA/9oACAEBAAAAAL/P+f7/a/z/R/eQO/1/j+39P5fwAQFIBfs/V+gBBmAEAMBb' +
    '/n5gEG4AIHfm/Jf8BAmAEBl8l8X4PvX+ICvufa+x9b6gCFsAH6PpfQ+cAhnAEBF/T8XzAENYAgGvMvKv4P/Z',
  jpeg2000:
    '/0//UQApAAAAAAAIAAAACAAAAAAAAAAAAAAACAAAAAgAAAAAAAAAAAABCwEB/1IADAAAAAIAAgQEAAH/XAAKQGBoaHBoaHD/ZAAl' +
    'AAFDcmVhdGVkIGJ5IE9wZW5KUEVHIHZlcnNpb24gMi41LjD/kAAKAAAAAAB4AAH/k4CnwCR8AYACOrysBFmlpjSIDs+aZ2QoIbfH' +
    '7AwHfCCEz2/D9gb9gT9gMA1bZmWEB7k38H+C3h/H8in9A7/gSBaF8H6m/zwdGjiUD747qFFksTCn4d+Bc0MCowDBtZtXBLlqge2i' +
    'nvLnFNf/2Q==',
  htj2k:
    '/0//UQApQAAAAAAIAAAACAAAAAAAAAAAAAAACAAAAAgAAAAAAAAAAAABDwEB/1AACAACAAAACf9SAAwAAAABAAEEBEAB/1wAByCI' +
    'iIiI/2QAFwABT3BlbkpQSCBWZXIgMC4xOC4yLv9VABAAYAAAAAAAOQAAAAAAZf+QAAoAAAAAADkAAv+TwAAunP9/4+kL+e/ni/Q+' +
    'vmScUD/On65P78+ov9c/9vZ08/0A9ZdCADG4AP+QAAoAAAAAAGUBAv+TwAAtqAAFuQAAtYD++x//FWAB/ee//3mP/3wPf/j7BCJC' +
    'AQxXAP73H/6bf/9j/wzgP8Rf/2BA/0sBAX6uQoBMuAD+/z//d/99/3/9v/9/ADCXXKQAfLkA/9k=',
  'jpeg-xl':
    'AAAADEpYTCANCocKAAAAFGZ0eXBqeGwgAAAAAGp4bCAAAAAJanhsbAoAAABoanhsY/8KQfADFC0CCAQBAEgBSzhqGNLb9SsoSIqt' +
    'wlLumRo/G2zG5/P5fD6/AT6fz+fzP2ADfD7/A24NNMD/gGuAz+cf/zXA5/P5/Ab4fD6f/wHXAJ/P/4BrgN8A/wOuAT6fDw==',
};
