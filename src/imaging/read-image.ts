// Part 10 bytes -> the first frame as modality values. Order of checks: is it an image at all, can its transfer
// syntax be decoded, are its dimensions and layout usable; only then are the pixel bytes decoded, so a header
// claiming 60000 x 60000 pixels is refused before any decoder or pixel buffer is sized from it.

import dcmjs from 'dcmjs';
import type { DicomDictInstance } from 'dcmjs';
import type { DecodedImage } from './decoded-image.js';
import { decodeFrame, initPixelCodecs } from './decode-frame.js';
import { firstString, values } from './dicom-values.js';
import { firstEncapsulatedFrame, firstNativeFrame, missingPixels } from './first-frame.js';
import {
  declaresLossyCompression,
  hasPixelData,
  modalityCanBeNegative,
  readModalityTransform,
  readPadding,
  readPixelModule,
  readVoi,
} from './image-attributes.js';
import { dcmjsReadable } from '../dicom/dataset-text.js';
import { walkDatasetBuffer } from '../dicom/dataset-walker.js';
import { parsePart10Header } from '../dicom/part10-header.js';
import { encodingOf } from '../dicom/transfer-syntaxes.js';
import { describeError } from '../errors.js';
import { routeLibraryLogsInWorker } from '../logging/library-logs.js';
import { PixelDecodeError, notProcessed } from './pixel-errors.js';
import { toModalityValues, type SampleRule, type StoredSamples } from './stored-values.js';
import { pixelEncoding } from './transfer-syntaxes.js';

const { DicomMessage } = dcmjs.data;

// Inference workers decode here: what dcmjs prints in a worker would reach the daemon's stdout as raw text.
routeLibraryLogsInWorker();

/** Float Pixel Data / Double Float Pixel Data: parametric maps, not radiographs. */
const FLOAT_PIXEL_TAGS = ['7FE00008', '7FE00009'];

/**
 * Decodes the first frame of a grey image. Synchronous; compressed syntaxes need the WASM decoders loaded first
 * (await initPixelCodecs() once, or use loadImage()). Every failure is a PixelDecodeError.
 */
export function readImage(part10: Uint8Array): DecodedImage {
  const { dicom, walkedPixelData } = parse(part10);
  const ds = dicom.dict;
  const transferSyntaxUid = firstString(dicom.meta, '00020010') ?? '';
  if (!hasPixelData(ds)) {
    if (FLOAT_PIXEL_TAGS.some((t) => ds[t] !== undefined)) {
      throw new PixelDecodeError(
        'PIXELS_UNSUPPORTED_LAYOUT',
        'the instance carries floating-point pixel data (a parametric map), not a radiograph; route only CR/DX images to the gateway',
      );
    }
    // Our walk saw Pixel Data where dcmjs did not: its parser lost track (e.g. at an unknown VR), not the sender.
    if (walkedPixelData) throw parserLimit('it lost the Pixel Data element that the dataset has');
    throw missingPixels();
  }
  const encoding = pixelEncoding(transferSyntaxUid);
  const pm = readPixelModule(ds);
  const count = pm.rows * pm.columns;
  const pixelValue = values(ds, '7FE00010');
  const describe = `${pm.rows} x ${pm.columns} x ${pm.bitsAllocated} bits`;

  let samples: StoredSamples;
  let rule: SampleRule;
  if (encoding.kind === 'native') {
    const bytesPerSample = (pm.bitsAllocated / 8) as 1 | 2 | 4;
    let bytes = firstNativeFrame(pixelValue, count * bytesPerSample, describe);
    if (!encoding.littleEndian && bytesPerSample === 1 && ds['7FE00010']?.vr === 'OW') bytes = swapPairs(bytes);
    if (!encoding.littleEndian && bytesPerSample === 4) {
      throw new PixelDecodeError(
        'PIXELS_UNSUPPORTED_LAYOUT',
        '32-bit pixels in Explicit VR Big Endian (a retired transfer syntax) are not supported; ask the sender for Explicit VR Little Endian',
      );
    }
    samples = { bytes, bytesPerSample, littleEndian: encoding.littleEndian };
    rule = { bitsStored: pm.bitsStored, shift: pm.highBit + 1 - pm.bitsStored, signed: pm.pixelRepresentation === 1 };
  } else {
    if (pm.bitsAllocated === 32) {
      throw new PixelDecodeError(
        'PIXELS_UNSUPPORTED_LAYOUT',
        `Bits Allocated 32 cannot be carried in ${transferSyntaxUid}; the file is malformed, ask the sender for Explicit VR Little Endian`,
      );
    }
    const frame = firstEncapsulatedFrame(pixelValue, encoding.codec, pm.numberOfFrames);
    const decoded = decodeFrame(frame, encoding.codec, {
      rows: pm.rows,
      columns: pm.columns,
      bitsAllocated: pm.bitsAllocated,
      bitsStored: pm.bitsStored,
      pixelRepresentation: pm.pixelRepresentation,
    });
    samples = { bytes: decoded, bytesPerSample: decoded.length === count ? 1 : 2, littleEndian: true };
    // Decoders return samples aligned to bit 0 (PS3.5 8.2 requires High Bit = Bits Stored - 1 for these syntaxes).
    rule = { bitsStored: pm.bitsStored, shift: 0, signed: pm.pixelRepresentation === 1 };
  }

  const transform = readModalityTransform(ds, pm);
  const modality = toModalityValues(samples, count, rule, transform, readPadding(ds));
  const sopInstanceUid = firstString(ds, '00080018');
  return {
    rows: pm.rows,
    columns: pm.columns,
    photometric: pm.photometric,
    values: modality.values,
    padding: modality.padding,
    bitsStored: pm.bitsStored,
    modalityTransform: transform,
    voi: readVoi(ds, modalityCanBeNegative(pm, transform)),
    ...(sopInstanceUid === undefined ? {} : { sopInstanceUid }),
    transferSyntaxUid,
    lossy: (encoding.kind === 'encapsulated' && encoding.lossy) || declaresLossyCompression(ds),
  };
}

/** readImage() after making sure the WASM decoders are loaded (and reloaded after a decoder crash). */
export async function loadImage(part10: Uint8Array): Promise<DecodedImage> {
  await initPixelCodecs();
  return readImage(part10);
}

function parserLimit(what: string, cause?: unknown): PixelDecodeError {
  return new PixelDecodeError(
    'PIXELS_CORRUPT',
    notProcessed(
      `its element structure is intact, but the gateway's DICOM parser (dcmjs) failed on it: ${what}`,
      "the image is kept as received; this is a limit of the gateway, not damage by the sender: report it to the gateway's maintainers with the image",
    ),
    cause === undefined ? undefined : { cause },
  );
}

function parse(input: Uint8Array): { dicom: DicomDictInstance; walkedPixelData: boolean } {
  const walkedPixelData = checkComplete(input);
  // Pixels need no text: a character set dcmjs refuses (ISO 2022 code extensions: Japanese, Korean, Chinese) is
  // blanked in a copy rather than failing the image.
  const part10 = dcmjsReadable(input);
  // A Buffer is often a window on a shared pool (and Buffer#slice does not copy): hand dcmjs exactly the file's bytes.
  const buffer =
    part10.byteOffset === 0 && part10.byteLength === part10.buffer.byteLength && part10.buffer instanceof ArrayBuffer
      ? part10.buffer
      : new Uint8Array(part10).buffer;
  // dcmjs logs every VR oddity it meets (e.g. implicit-VR Pixel Data) on this logger; they are not our errors.
  const validationLog = dcmjs.log.getLogger('validation.dcmjs');
  const level = validationLog.getLevel();
  validationLog.setLevel('silent');
  try {
    return { dicom: DicomMessage.readFile(buffer), walkedPixelData };
  } catch (cause) {
    // The element structure was walked just before (checkComplete), so this is our parser's limit, not damage.
    throw parserLimit(cause instanceof Error ? cause.message : String(cause), cause);
  } finally {
    validationLog.setLevel(level);
  }
}

// The store walks every element before it answers Success, so a received image that fails this walk now changed on
// our disk afterwards; a file given to `classify` directly may simply be damaged.
const STORED_COPY_DAMAGED =
  'the file is truncated or garbled. An image the gateway received passed this check when it was stored, so its stored copy was damaged afterwards (disk or storage fault): restore it from the sender';

/**
 * dcmjs zero-fills an element cut short by the end of the file, which would turn a truncated image into a
 * plausible-looking one with a black band. Walk the element structure first and refuse such a file. Returns
 * whether the walk saw top-level Pixel Data.
 */
function checkComplete(part10: Uint8Array): boolean {
  const file = Buffer.from(part10.buffer, part10.byteOffset, part10.byteLength);
  let header;
  try {
    header = parsePart10Header(file, 'the instance');
  } catch (cause) {
    throw new PixelDecodeError('PIXELS_CORRUPT', notProcessed(describeError(cause), STORED_COPY_DAMAGED), { cause });
  }
  if (encodingOf(header.transferSyntaxUid) === undefined) return false; // readImage names the unsupported syntax
  try {
    return walkDatasetBuffer(file.subarray(header.datasetOffset), header.transferSyntaxUid).hasPixelData;
  } catch (cause) {
    throw new PixelDecodeError(
      'PIXELS_CORRUPT',
      notProcessed(`the dataset is damaged: ${describeError(cause)}`, STORED_COPY_DAMAGED),
      { cause },
    );
  }
}

function swapPairs(bytes: Uint8Array): Uint8Array {
  const out = new Uint8Array(bytes.length);
  for (let i = 0; i + 1 < bytes.length; i += 2) {
    out[i] = bytes[i + 1] ?? 0;
    out[i + 1] = bytes[i] ?? 0;
  }
  return out;
}
