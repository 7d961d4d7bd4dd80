import { PixelDecodeError } from './pixel-errors.js';

/** How the bytes of Pixel Data are laid out for a transfer syntax, and which decoder (if any) opens them. */
export type PixelEncoding =
  { kind: 'native'; littleEndian: boolean } | { kind: 'encapsulated'; codec: FrameCodec; lossy: boolean };

/** One entry per decoder in dcmjs-codecs' WASM module. */
export type FrameCodec = 'rle' | 'jpeg' | 'jpeg-ls' | 'jpeg2000' | 'htj2k' | 'jpeg-xl';

interface SyntaxInfo {
  name: string;
  encoding: PixelEncoding;
}

const native = (littleEndian: boolean): PixelEncoding => ({ kind: 'native', littleEndian });
const enc = (codec: FrameCodec, lossy: boolean): PixelEncoding => ({ kind: 'encapsulated', codec, lossy });

const SUPPORTED: ReadonlyMap<string, SyntaxInfo> = new Map<string, SyntaxInfo>([
  ['1.2.840.10008.1.2', { name: 'Implicit VR Little Endian', encoding: native(true) }],
  ['1.2.840.10008.1.2.1', { name: 'Explicit VR Little Endian', encoding: native(true) }],
  // dcmjs inflates the whole data set while parsing, so the pixels arrive native.
  ['1.2.840.10008.1.2.1.99', { name: 'Deflated Explicit VR Little Endian', encoding: native(true) }],
  ['1.2.840.10008.1.2.2', { name: 'Explicit VR Big Endian (retired)', encoding: native(false) }],
  ['1.2.840.10008.1.2.5', { name: 'RLE Lossless', encoding: enc('rle', false) }],
  // One libjpeg build per precision (8, 12, 16 bits) sits behind decodeJpeg, so the extended 12-bit process and
  // both lossless processes decode as well as baseline.
  ['1.2.840.10008.1.2.4.50', { name: 'JPEG Baseline (Process 1)', encoding: enc('jpeg', true) }],
  ['1.2.840.10008.1.2.4.51', { name: 'JPEG Extended (Process 2 & 4)', encoding: enc('jpeg', true) }],
  ['1.2.840.10008.1.2.4.57', { name: 'JPEG Lossless (Process 14)', encoding: enc('jpeg', false) }],
  [
    '1.2.840.10008.1.2.4.70',
    { name: 'JPEG Lossless SV1 (Process 14, Selection Value 1)', encoding: enc('jpeg', false) },
  ],
  ['1.2.840.10008.1.2.4.80', { name: 'JPEG-LS Lossless', encoding: enc('jpeg-ls', false) }],
  ['1.2.840.10008.1.2.4.81', { name: 'JPEG-LS Near-Lossless', encoding: enc('jpeg-ls', true) }],
  ['1.2.840.10008.1.2.4.90', { name: 'JPEG 2000 Lossless', encoding: enc('jpeg2000', false) }],
  ['1.2.840.10008.1.2.4.91', { name: 'JPEG 2000', encoding: enc('jpeg2000', true) }],
  ['1.2.840.10008.1.2.4.201', { name: 'High-Throughput JPEG 2000 Lossless', encoding: enc('htj2k', false) }],
  ['1.2.840.10008.1.2.4.202', { name: 'High-Throughput JPEG 2000 RPCL Lossless', encoding: enc('htj2k', false) }],
  ['1.2.840.10008.1.2.4.203', { name: 'High-Throughput JPEG 2000', encoding: enc('htj2k', true) }],
  ['1.2.840.10008.1.2.4.110', { name: 'JPEG XL Lossless', encoding: enc('jpeg-xl', false) }],
  ['1.2.840.10008.1.2.4.111', { name: 'JPEG XL JPEG Recompression', encoding: enc('jpeg-xl', false) }],
  ['1.2.840.10008.1.2.4.112', { name: 'JPEG XL', encoding: enc('jpeg-xl', true) }],
]);

/** Names for syntaxes we know but cannot decode, so the admin reads "MPEG2", not just a UID. */
const KNOWN_UNSUPPORTED: ReadonlyMap<string, string> = new Map([
  ['1.2.840.10008.1.2.1.98', 'Encapsulated Uncompressed Explicit VR Little Endian'],
  ['1.2.840.10008.1.2.4.92', 'JPEG 2000 Part 2 Multi-component Lossless'],
  ['1.2.840.10008.1.2.4.93', 'JPEG 2000 Part 2 Multi-component'],
  ['1.2.840.10008.1.2.4.94', 'JPIP Referenced'],
  ['1.2.840.10008.1.2.4.95', 'JPIP Referenced Deflate'],
  ['1.2.840.10008.1.2.4.100', 'MPEG2 Main Profile'],
  ['1.2.840.10008.1.2.4.100.1', 'Fragmentable MPEG2 Main Profile'],
  ['1.2.840.10008.1.2.4.101', 'MPEG2 High Profile'],
  ['1.2.840.10008.1.2.4.101.1', 'Fragmentable MPEG2 High Profile'],
  ['1.2.840.10008.1.2.4.102', 'MPEG-4 AVC/H.264'],
  ['1.2.840.10008.1.2.4.103', 'MPEG-4 AVC/H.264 BD-compatible'],
  ['1.2.840.10008.1.2.4.104', 'MPEG-4 AVC/H.264 for 2D video'],
  ['1.2.840.10008.1.2.4.105', 'MPEG-4 AVC/H.264 for 3D video'],
  ['1.2.840.10008.1.2.4.106', 'MPEG-4 AVC/H.264 Stereo'],
  ['1.2.840.10008.1.2.4.107', 'HEVC/H.265 Main Profile'],
  ['1.2.840.10008.1.2.4.108', 'HEVC/H.265 Main 10 Profile'],
  ['1.2.840.10008.1.2.6.1', 'RFC 2557 MIME encapsulation'],
  ['1.2.840.10008.1.2.6.2', 'XML encoding'],
  ['1.2.840.10008.1.2.7.1', 'SMPTE ST 2110-20 Uncompressed Progressive Active Video'],
  ['1.2.840.10008.1.2.8.1', 'Deflated Image Frame Compression'],
]);

/** What the admin should ask the modality (or the forwarding PACS) for instead. */
const ASK_FOR =
  'configure the sending modality or PACS to send this image as Explicit VR Little Endian (1.2.840.10008.1.2.1), ' +
  'JPEG Lossless SV1 (1.2.840.10008.1.2.4.70), JPEG-LS Lossless (1.2.840.10008.1.2.4.80), ' +
  'JPEG 2000 Lossless (1.2.840.10008.1.2.4.90) or RLE Lossless (1.2.840.10008.1.2.5)';

export function syntaxName(uid: string): string {
  return SUPPORTED.get(uid)?.name ?? KNOWN_UNSUPPORTED.get(uid) ?? retiredJpegName(uid) ?? 'unknown';
}

function retiredJpegName(uid: string): string | undefined {
  const m = /^1\.2\.840\.10008\.1\.2\.4\.(\d+)$/.exec(uid);
  const n = m?.[1] === undefined ? NaN : Number(m[1]);
  return n >= 52 && n <= 66 ? `retired JPEG process (.${n})` : undefined;
}

/** The encoding of a transfer syntax we can decode; a PIXELS_UNSUPPORTED_SYNTAX error for any other. */
export function pixelEncoding(uid: string): PixelEncoding {
  const info = SUPPORTED.get(uid);
  if (info) return info.encoding;
  const what =
    uid === ''
      ? 'no transfer syntax (the file meta information lacks (0002,0010))'
      : `transfer syntax ${uid} (${syntaxName(uid)})`;
  throw new PixelDecodeError(
    'PIXELS_UNSUPPORTED_SYNTAX',
    `${what} is not supported for classification; ${ASK_FOR}, or let the PACS transcode it before forwarding`,
  );
}

/** Every transfer syntax readImage() decodes. */
export const SUPPORTED_TRANSFER_SYNTAXES: readonly string[] = [...SUPPORTED.keys()];
