import { readFile } from 'node:fs/promises';
import dcmjs from 'dcmjs';
import { describeError } from '../errors.js';
import { encodePng } from '../reporting/png-encoder.js';
import { nativeScBytes } from '../reporting/sc-decoding.js';
import { ConsoleRefusal } from './console-types.js';

const { DicomMessage } = dcmjs.data;

/**
 * The heatmap Secondary Capture the gateway wrote (src/reporting/secondary-capture.ts: 8-bit RGB, colour-by-pixel,
 * one frame, in secondaryCapture.encoding: decoded back to native first) as a PNG for the console's study page: the browser shows what the PACS shows. Only our
 * own SCs are read here, so anything else is refused rather than decoded: a file whose layout is not ours is a
 * damaged or foreign file (ConsoleRefusal 404 for a file retention removed, 409 for one that is not our SC).
 */
export async function overlayPng(scPath: string): Promise<Buffer> {
  let bytes: Buffer;
  try {
    bytes = await readFile(scPath);
  } catch (error) {
    const gone = (error as NodeJS.ErrnoException).code === 'ENOENT';
    throw new ConsoleRefusal(
      404,
      'OVERLAY_MISSING',
      gone
        ? 'the overlay file is no longer in the spool (deleted by retention after maintenance.retentionDays): reprocess the study to make it again'
        : `the overlay file cannot be read: ${describeError(error)}`,
    );
  }
  let native: Uint8Array;
  try {
    native = await nativeScBytes(bytes);
  } catch (error) {
    throw new ConsoleRefusal(
      409,
      'OVERLAY_UNREADABLE',
      `the overlay file is not a heatmap picture written by the gateway: its pixels cannot be decoded (${describeError(error)})`,
    );
  }
  return encodePng(scPixels(native));
}

/** The RGB pixels of one of our SCs; ConsoleRefusal 409 when the file is not one. */
export function scPixels(bytes: Uint8Array): { rows: number; columns: number; data: Uint8Array } {
  const notOurs = (why: string) =>
    new ConsoleRefusal(
      409,
      'OVERLAY_UNREADABLE',
      `the overlay file is not a heatmap picture written by the gateway: ${why}`,
    );
  let ds: Record<string, unknown>;
  try {
    const buffer = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
    const message = DicomMessage.readFile(buffer);
    ds = dcmjs.data.DicomMetaDictionary.naturalizeDataset(message.dict) as Record<string, unknown>;
  } catch (error) {
    throw notOurs(`not readable as DICOM (${describeError(error)})`);
  }
  const rows = ds['Rows'];
  const columns = ds['Columns'];
  if (typeof rows !== 'number' || typeof columns !== 'number' || rows < 1 || columns < 1) throw notOurs('no size');
  if (ds['SamplesPerPixel'] !== 3 || ds['PhotometricInterpretation'] !== 'RGB' || ds['BitsAllocated'] !== 8)
    throw notOurs('not 8-bit RGB');
  if ((ds['PlanarConfiguration'] ?? 0) !== 0) throw notOurs('colour-by-plane');
  const pixelData = ds['PixelData'];
  const first: unknown = Array.isArray(pixelData) ? pixelData[0] : undefined;
  if (!(first instanceof ArrayBuffer)) throw notOurs('no pixel data');
  const needed = rows * columns * 3;
  if (first.byteLength < needed) throw notOurs(`${first.byteLength} bytes of pixel data for ${columns} x ${rows} RGB`);
  return { rows, columns, data: new Uint8Array(first, 0, needed) };
}
