// Test helper for the pixel pipeline: edit synthetic files from test/helpers/dicom-factory.ts at the DicomJson level
// (exact VRs, no naturalisation), write known pixel values, and wrap codestreams the factory cannot make
// (HTJ2K, JPEG XL, made with dcmjs-codecs' own encoders) into Part 10 files.

import dcmjs from 'dcmjs';
import type { DicomJson } from 'dcmjs';
import dcmjsCodecs from 'dcmjs-codecs';

const { DicomDict, DicomMessage } = dcmjs.data;

function toArrayBuffer(bytes: Uint8Array): ArrayBuffer {
  return new Uint8Array(bytes).buffer;
}

/** Parses Part 10 bytes, lets `edit` change file meta and data set in place, writes them back. */
export function editFile(bytes: Uint8Array, edit: (meta: DicomJson, ds: DicomJson) => void): Buffer {
  const log = dcmjs.log.getLogger('validation.dcmjs');
  const level = log.getLevel();
  log.setLevel('silent');
  try {
    const dicom = DicomMessage.readFile(toArrayBuffer(bytes));
    const meta: DicomJson = { ...dicom.meta };
    delete meta['00020000'];
    const ds: DicomJson = { ...dicom.dict };
    edit(meta, ds);
    const out = new DicomDict(meta);
    out.dict = ds;
    return Buffer.from(out.write({ fragmentMultiframe: false }));
  } finally {
    log.setLevel(level);
  }
}

/** Sets one attribute. */
export function set(ds: DicomJson, tag: string, vr: string, value: unknown[]): void {
  ds[tag] = { vr, Value: value };
}

/** Removes attributes. */
export function remove(ds: DicomJson, ...tags: string[]): void {
  for (const tag of tags) delete ds[tag];
}

/** Replaces native Pixel Data with these samples (little endian). */
export function setPixels(ds: DicomJson, samples: Uint8Array | Uint16Array | Int16Array): void {
  const bytes = new Uint8Array(samples.buffer, samples.byteOffset, samples.byteLength);
  const padded = bytes.length % 2 === 1 ? Uint8Array.from([...bytes, 0]) : bytes;
  ds['7FE00010'] = { vr: samples.BYTES_PER_ELEMENT === 1 ? 'OB' : 'OW', Value: [toArrayBuffer(padded)] };
}

/** The native 16-bit samples of a file as a Uint16Array (copy). */
export function nativeSamples16(bytes: Uint8Array): Uint16Array {
  const dicom = DicomMessage.readFile(toArrayBuffer(bytes));
  const v = dicom.dict['7FE00010']?.Value?.[0];
  if (!(v instanceof ArrayBuffer)) throw new Error('no native Pixel Data');
  const rows = Number(dicom.dict['00280010']?.Value?.[0]);
  const columns = Number(dicom.dict['00280011']?.Value?.[0]);
  return new Uint16Array(v.slice(0, rows * columns * 2));
}

/** Wraps one encoded frame as encapsulated Pixel Data in `transferSyntaxUid`. */
export function wrapFrame(nativeFile: Uint8Array, transferSyntaxUid: string, frames: Uint8Array[]): Buffer {
  return editFile(nativeFile, (meta, ds) => {
    set(meta, '00020010', 'UI', [transferSyntaxUid]);
    ds['7FE00010'] = { vr: 'OB', Value: frames.map(toArrayBuffer) };
  });
}

export type WasmEncoder =
  'encodeHtJpeg2000' | 'encodeJpegXl' | 'encodeJpeg2000' | 'encodeRle' | 'encodeJpegLs' | 'encodeJpeg';

let codecsLoaded: Promise<void> | undefined;

/** Encodes samples losslessly with one of dcmjs-codecs' encoders. */
export async function wasmEncode(
  encoder: WasmEncoder,
  samples: Uint8Array | Uint16Array,
  geometry: { rows: number; columns: number; bitsStored: number },
): Promise<Uint8Array> {
  const { NativeCodecs, Context } = dcmjsCodecs;
  if (!NativeCodecs.isInitialized()) await (codecsLoaded ??= NativeCodecs.initializeAsync());
  const context = new Context({
    width: geometry.columns,
    height: geometry.rows,
    bitsAllocated: samples.BYTES_PER_ELEMENT * 8,
    bitsStored: geometry.bitsStored,
    samplesPerPixel: 1,
    pixelRepresentation: 0,
    planarConfiguration: 0,
    photometricInterpretation: 'MONOCHROME2',
    decodedBuffer: new Uint8Array(samples.buffer, samples.byteOffset, samples.byteLength),
  });
  const encoded = NativeCodecs[encoder](context, { lossy: false }).getEncodedBuffer();
  if (!encoded) throw new Error(`${encoder} produced nothing`);
  return encoded;
}
