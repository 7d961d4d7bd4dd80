// Our heatmap SC back to native RGB pixels, whatever encoding secondaryCapture.encoding chose (sc-encoding.ts): for
// the console, which shows the picture the PACS shows. dcmjs-codecs' Transcoder decodes the frame (and converts a
// JPEG baseline's YBR_FULL_422 back to RGB); a native file is returned as it is.

import dcmjsCodecs from 'dcmjs-codecs';
import { TransferSyntax } from '../dicom/transfer-syntaxes.js';
import { frameEncodersReady, initFrameEncoders } from '../imaging/frame-encoder.js';

const { Transcoder } = dcmjsCodecs;

const NATIVE: ReadonlySet<string> = new Set([
  TransferSyntax.ExplicitVRLittleEndian,
  TransferSyntax.ImplicitVRLittleEndian,
]);

/** The Part 10 file in Explicit VR Little Endian (the same bytes when it already is native). */
export async function nativeScBytes(part10: Uint8Array): Promise<Uint8Array> {
  const buffer = new ArrayBuffer(part10.byteLength);
  new Uint8Array(buffer).set(part10);
  const transcoder = new Transcoder(buffer);
  if (NATIVE.has(transcoder.getTransferSyntaxUid())) return part10;
  if (!frameEncodersReady()) await initFrameEncoders();
  transcoder.transcode(TransferSyntax.ExplicitVRLittleEndian);
  return new Uint8Array(transcoder.getDicomPart10());
}
