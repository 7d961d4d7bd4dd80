// Test fixture: an RGB Secondary Capture written with dcmjs, the way the gateway's heatmap writer will write
// one, in the study of a given source image (same StudyInstanceUID and patient, a new series).

import dcmjs from 'dcmjs';
import type { NaturalDataset } from 'dcmjs';
import { makeImageFile, newUid } from '../helpers/dicom-factory.js';

const { DicomDict, DicomMetaDictionary } = dcmjs.data;

export const SECONDARY_CAPTURE_SOP_CLASS_UID = '1.2.840.10008.5.1.4.1.1.7';
const EXPLICIT_VR_LITTLE_ENDIAN = '1.2.840.10008.1.2.1';

export interface SecondaryCaptureFile {
  bytes: Buffer;
  sopInstanceUid: string;
  seriesInstanceUid: string;
  studyInstanceUid: string;
  /** The interleaved RGB pixels (R G B R G B ...), rows x columns x 3 bytes. */
  pixels: Buffer;
  rows: number;
  columns: number;
}

export interface SecondaryCaptureOptions {
  studyInstanceUid: string;
  patientId?: string;
  patientName?: string;
  accessionNumber?: string;
  sopInstanceUid?: string;
  seriesInstanceUid?: string;
  rows?: number;
  columns?: number;
}

function toArrayBuffer(buf: Buffer): ArrayBuffer {
  const ab = new ArrayBuffer(buf.byteLength);
  new Uint8Array(ab).set(buf);
  return ab;
}

/** A red-to-blue gradient with a green diagonal: distinctive enough to recognise in a preview. */
function rgbPixels(rows: number, columns: number): Buffer {
  const pixels = Buffer.alloc(rows * columns * 3);
  for (let y = 0; y < rows; y += 1) {
    for (let x = 0; x < columns; x += 1) {
      const i = (y * columns + x) * 3;
      pixels[i] = Math.round((255 * x) / Math.max(1, columns - 1));
      pixels[i + 1] = Math.abs(x - y) < 4 ? 255 : 0;
      pixels[i + 2] = Math.round((255 * y) / Math.max(1, rows - 1));
    }
  }
  return pixels;
}

export function makeSecondaryCapture(options: SecondaryCaptureOptions): SecondaryCaptureFile {
  const rows = options.rows ?? 128;
  const columns = options.columns ?? 160;
  const sopInstanceUid = options.sopInstanceUid ?? newUid();
  const seriesInstanceUid = options.seriesInstanceUid ?? newUid();
  const pixels = rgbPixels(rows, columns);
  const meta: NaturalDataset = {
    FileMetaInformationVersion: toArrayBuffer(Buffer.from([0, 1])),
    MediaStorageSOPClassUID: SECONDARY_CAPTURE_SOP_CLASS_UID,
    MediaStorageSOPInstanceUID: sopInstanceUid,
    TransferSyntaxUID: EXPLICIT_VR_LITTLE_ENDIAN,
    ImplementationClassUID: '2.25.223483526387165012930291847262910347561',
    ImplementationVersionName: 'CXRGW_TESTFACT',
  };
  const dataset: NaturalDataset = {
    SpecificCharacterSet: 'ISO_IR 100',
    ImageType: ['DERIVED', 'SECONDARY'],
    SOPClassUID: SECONDARY_CAPTURE_SOP_CLASS_UID,
    SOPInstanceUID: sopInstanceUid,
    StudyDate: '20240102',
    StudyTime: '101500',
    AccessionNumber: options.accessionNumber ?? 'ACC0001',
    Modality: 'OT',
    ConversionType: 'WSD',
    Manufacturer: 'cxr-gateway tests',
    ReferringPhysicianName: '',
    SeriesDescription: 'AI heatmap (test) - not for diagnostic use',
    PatientName: options.patientName ?? 'Test^Synthetic',
    PatientID: options.patientId ?? 'CXRTEST0001',
    PatientBirthDate: '',
    PatientSex: '',
    StudyInstanceUID: options.studyInstanceUid,
    SeriesInstanceUID: seriesInstanceUid,
    StudyID: '1',
    SeriesNumber: 900,
    InstanceNumber: 1,
    PatientOrientation: '',
    BurnedInAnnotation: 'YES',
    SamplesPerPixel: 3,
    PhotometricInterpretation: 'RGB',
    PlanarConfiguration: 0,
    Rows: rows,
    Columns: columns,
    BitsAllocated: 8,
    BitsStored: 8,
    HighBit: 7,
    PixelRepresentation: 0,
    PixelData: [toArrayBuffer(pixels)],
    _vrMap: { PixelData: 'OB' },
  };
  const dict = new DicomDict(DicomMetaDictionary.denaturalizeDataset(meta));
  const denaturalized = DicomMetaDictionary.denaturalizeDataset(dataset);
  const pixelElement = denaturalized['7FE00010'];
  if (pixelElement) pixelElement.vr = 'OB';
  dict.dict = denaturalized;
  const bytes = Buffer.from(dict.write({ fragmentMultiframe: false }));
  return {
    bytes,
    sopInstanceUid,
    seriesInstanceUid,
    studyInstanceUid: options.studyInstanceUid,
    pixels,
    rows,
    columns,
  };
}

/** A DX chest image and a heatmap Secondary Capture of its study, as the pipeline will send them. */
export function studyPair() {
  // Same patient as well as the same study: Orthanc keys a study by PatientID and StudyInstanceUID together,
  // so a heatmap with another PatientID would land in a study of its own.
  const patientId = `PID-${newUid().slice(-8)}`;
  const dx = makeImageFile({ patientId });
  const sc = makeSecondaryCapture({ studyInstanceUid: dx.studyInstanceUid, patientId });
  return {
    dx,
    sc,
    items: [
      { bytes: dx.bytes, label: 'dx' },
      { bytes: sc.bytes, label: 'heatmap' },
    ],
  };
}
