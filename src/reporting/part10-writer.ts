// A naturalised dataset -> Part 10 bytes, in Explicit VR Little Endian (the one syntax every PACS accepts) unless
// the caller's pixels are encapsulated in another (sc-encoding.ts).

import dcmjs from 'dcmjs';
import type { DicomJson, NaturalDataset } from 'dcmjs';
import { IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME } from '../dicom/implementation.js';

const { DicomDict, DicomMetaDictionary } = dcmjs.data;

export const EXPLICIT_VR_LITTLE_ENDIAN = '1.2.840.10008.1.2.1';

/**
 * Writes a dataset with its file meta. `pixelVr` fixes the VR of Pixel Data, which dcmjs cannot infer ('OB or
 * OW'). Text values are written as UTF-8 by dcmjs; the caller declares SpecificCharacterSet accordingly.
 * `fragmentMultiframe: false` keeps dcmjs from splitting frames into 20 KiB fragments (Orthanc trips on those):
 * with an encapsulated `transferSyntaxUid`, each PixelData buffer is one frame, written as one fragment (padded to
 * even length) behind a Basic Offset Table that lists each frame's offset.
 */
export function writePart10(
  dataset: NaturalDataset,
  pixelVr?: 'OB' | 'OW',
  transferSyntaxUid: string = EXPLICIT_VR_LITTLE_ENDIAN,
): Buffer {
  const sopClassUid = dataset.SOPClassUID;
  const sopInstanceUid = dataset.SOPInstanceUID;
  const meta = DicomMetaDictionary.denaturalizeDataset({
    FileMetaInformationVersion: new Uint8Array([0, 1]).buffer,
    MediaStorageSOPClassUID: sopClassUid,
    MediaStorageSOPInstanceUID: sopInstanceUid,
    TransferSyntaxUID: transferSyntaxUid,
    ImplementationClassUID: IMPLEMENTATION_CLASS_UID,
    ImplementationVersionName: IMPLEMENTATION_VERSION_NAME,
  });
  const dict = new DicomDict(meta);
  const body: DicomJson = DicomMetaDictionary.denaturalizeDataset(dataset);
  const pixels = body['7FE00010'];
  if (pixels && pixelVr) pixels.vr = pixelVr;
  dict.dict = body;
  return Buffer.from(dict.write({ fragmentMultiframe: false }));
}

/** True when every string in the dataset is 7-bit ASCII (the default repertoire needs no SpecificCharacterSet). */
export function isAscii(value: unknown): boolean {
  if (typeof value === 'string') return /^[\x00-\x7f]*$/.test(value);
  if (Array.isArray(value)) return value.every(isAscii);
  if (value instanceof ArrayBuffer || ArrayBuffer.isView(value)) return true;
  if (typeof value === 'object' && value !== null) return Object.values(value).every(isAscii);
  return true;
}
