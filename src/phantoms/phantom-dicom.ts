// A phantom as a DICOM Part 10 file: Digital X-Ray Image Storage - For Presentation (DX IOD), every module the IOD
// requires filled so that dciodvfy reports no errors, in any of the syntaxes of frame-encoder.ts. Identity is
// obviously synthetic (PHANTOM^0001) and everything time-like is derived from the seed: the same phantom gives the
// same bytes. Rescale is the identity (DX requires it); the window from the exposure is written as the VOI.

import { endianness } from 'node:os';
import dcmjs from 'dcmjs';
import type { NaturalDataset } from 'dcmjs';
import { IMPLEMENTATION_CLASS_UID } from '../dicom/implementation.js';
import { SopClass } from '../dicom/sop-classes.js';
import {
  declaredBitsStored,
  encodeFrame,
  isEncapsulated,
  PHANTOM_SYNTAXES,
  type PhantomSyntax,
} from './frame-encoder.js';
import type { PhantomSpec } from './phantom-spec.js';
import { phantomStudyDateTime, phantomUid } from './phantom-uids.js';
import type { PhantomImage } from './render-phantom.js';

const { DicomDict, DicomMetaDictionary } = dcmjs.data;

const IMPLEMENTATION_VERSION_NAME = 'CXRGW_PHANTOM';
const MANUFACTURER = 'cxr-gateway phantoms';
/** Detector edge in mm: a 43 cm flat panel, whatever the matrix. */
const DETECTOR_MM = 430;

export interface PhantomIdentity {
  patientName: string;
  patientId: string;
  accessionNumber: string;
  studyId: string;
  studyInstanceUid: string;
  seriesInstanceUid: string;
  sopInstanceUid: string;
  seriesNumber: number;
  instanceNumber: number;
  date: string;
  time: string;
}

/** Identity of the phantom `spec` of the dataset with seed `datasetSeed`: one patient and study per study index. */
export function phantomIdentity(spec: PhantomSpec, datasetSeed: number): PhantomIdentity {
  const n = String(spec.studyIndex + 1).padStart(4, '0');
  const image = `${spec.studyIndex}.${spec.indexInStudy}`;
  const { date, time } = phantomStudyDateTime(datasetSeed, spec.studyIndex);
  const accession = phantomUid(datasetSeed, 'study', `accession.${spec.studyIndex}`).slice(-8);
  return {
    patientName: `PHANTOM^${n}`,
    patientId: `PHANTOM-${datasetSeed >>> 0}-${n}`,
    accessionNumber: `PH${accession}`,
    studyId: n,
    studyInstanceUid: phantomUid(datasetSeed, 'study', spec.studyIndex),
    seriesInstanceUid: phantomUid(datasetSeed, 'series', image),
    sopInstanceUid: phantomUid(datasetSeed, 'instance', image),
    seriesNumber: spec.indexInStudy + 1,
    instanceNumber: 1,
    date,
    time,
  };
}

const ANATOMY = {
  CHEST: { CodeValue: '51185008', CodingSchemeDesignator: 'SCT', CodeMeaning: 'Thorax' },
  HAND: { CodeValue: '85562004', CodingSchemeDesignator: 'SCT', CodeMeaning: 'Hand' },
  SKULL: { CodeValue: '89546000', CodingSchemeDesignator: 'SCT', CodeMeaning: 'Skull' },
} as const;

/** CID 4010 DX View. */
const VIEW_CODES = {
  PA: { CodeValue: '399348003', CodingSchemeDesignator: 'SCT', CodeMeaning: 'postero-anterior' },
  AP: { CodeValue: '399067008', CodingSchemeDesignator: 'SCT', CodeMeaning: 'antero-posterior' },
  LL: { CodeValue: '399173006', CodingSchemeDesignator: 'SCT', CodeMeaning: 'left lateral' },
} as const;

/** Row and column directions as displayed: patient's left to the right on frontal films, anterior left on the lateral. */
function patientOrientation(image: PhantomImage): [string, string] {
  if (image.view === 'LL') return ['P', 'F'];
  // Hand with the fingers up: down the image is towards the wrist (H in the anatomical position).
  if (image.bodyPart === 'HAND') return ['L', 'H'];
  return ['L', 'F'];
}

/** The samples as little-endian bytes (a copy; byte-swapped on a big-endian machine). */
export function littleEndianBytes(pixels: Uint16Array): ArrayBuffer {
  const out = new ArrayBuffer(pixels.length * 2);
  if (endianness() === 'LE') {
    new Uint16Array(out).set(pixels);
    return out;
  }
  const view = new DataView(out);
  for (let i = 0; i < pixels.length; i++) view.setUint16(i * 2, pixels[i] ?? 0, true);
  return out;
}

function toArrayBuffer(bytes: Uint8Array): ArrayBuffer {
  const out = new ArrayBuffer(bytes.byteLength + (bytes.byteLength % 2));
  new Uint8Array(out).set(bytes);
  return out;
}

function describe(image: PhantomImage): string {
  const what = image.bodyPart === 'CHEST' ? `${image.view} chest` : `${image.view} ${image.bodyPart.toLowerCase()}`;
  return `SYNTHETIC PHANTOM ${what.toUpperCase()}`;
}

/** The data set (without file meta information) of a phantom image, Pixel Data native (16 bits allocated). */
export function phantomDataset(image: PhantomImage, id: PhantomIdentity, syntax: PhantomSyntax): NaturalDataset {
  const monochrome1 = image.photometric === 'MONOCHROME1';
  const bitsStored = declaredBitsStored(syntax, image.bitsStored);
  const pixelSpacing = Math.round((DETECTOR_MM / Math.max(image.rows, image.columns)) * 1e4) / 1e4;
  const portable = image.view === 'AP' && image.bodyPart === 'CHEST';
  return {
    SpecificCharacterSet: 'ISO_IR 100',
    ImageType: ['ORIGINAL', 'PRIMARY'],
    InstanceCreationDate: id.date,
    InstanceCreationTime: id.time,
    SOPClassUID: SopClass.DigitalXRayImageStorageForPresentation,
    SOPInstanceUID: id.sopInstanceUid,
    StudyDate: id.date,
    SeriesDate: id.date,
    AcquisitionDate: id.date,
    ContentDate: id.date,
    StudyTime: id.time,
    SeriesTime: id.time,
    AcquisitionTime: id.time,
    ContentTime: id.time,
    AccessionNumber: id.accessionNumber,
    Modality: 'DX',
    PresentationIntentType: 'FOR PRESENTATION',
    Manufacturer: MANUFACTURER,
    InstitutionName: 'PHANTOM GENERAL (SYNTHETIC)',
    ReferringPhysicianName: '',
    StudyDescription: describe(image).replace(/ (PA|AP|LL) /, ' '),
    SeriesDescription: describe(image),
    ManufacturerModelName: 'synthetic phantom generator',
    AnatomicRegionSequence: [ANATOMY[image.bodyPart]],
    ViewCodeSequence: [{ ...VIEW_CODES[image.view], ViewModifierCodeSequence: [] }],
    PatientName: id.patientName,
    PatientID: id.patientId,
    PatientBirthDate: '',
    PatientSex: image.patientSex,
    BodyPartExamined: image.bodyPart,
    KVP: image.kvp,
    SoftwareVersions: 'cxr-gateway phantoms 1',
    Exposure: Math.max(1, Math.round(image.mas)),
    DetectorType: 'SCINTILLATOR',
    ImagerPixelSpacing: [pixelSpacing, pixelSpacing],
    ViewPosition: image.view,
    PositionerType: portable ? 'NONE' : 'COLUMN',
    StudyInstanceUID: id.studyInstanceUid,
    SeriesInstanceUID: id.seriesInstanceUid,
    StudyID: id.studyId,
    SeriesNumber: id.seriesNumber,
    InstanceNumber: id.instanceNumber,
    PatientOrientation: patientOrientation(image),
    ImageLaterality: image.laterality,
    SamplesPerPixel: 1,
    PhotometricInterpretation: image.photometric,
    Rows: image.rows,
    Columns: image.columns,
    BitsAllocated: 16,
    BitsStored: bitsStored,
    HighBit: bitsStored - 1,
    PixelRepresentation: 0,
    // Stored values are proportional to attenuation (log of the beam intensity), higher = less intensity on a
    // MONOCHROME2 image.
    PixelIntensityRelationship: 'LOG',
    PixelIntensityRelationshipSign: monochrome1 ? 1 : -1,
    RescaleIntercept: 0,
    RescaleSlope: 1,
    RescaleType: 'US',
    BurnedInAnnotation: image.textMarkers.length > 0 ? 'YES' : 'NO',
    LossyImageCompression: '00',
    WindowCenter: [image.window.center],
    WindowWidth: [image.window.width],
    VOILUTFunction: image.window.fn,
    AcquisitionContextSequence: [],
    PresentationLUTShape: monochrome1 ? 'INVERSE' : 'IDENTITY',
  };
}

/** The phantom as Part 10 bytes in `syntax`; compressed syntaxes need initFrameEncoders() to have completed. */
export function phantomPart10(image: PhantomImage, id: PhantomIdentity, syntax: PhantomSyntax): Buffer {
  const transferSyntaxUid = PHANTOM_SYNTAXES[syntax];
  const meta = DicomMetaDictionary.denaturalizeDataset({
    FileMetaInformationVersion: toArrayBuffer(new Uint8Array([0, 1])),
    MediaStorageSOPClassUID: SopClass.DigitalXRayImageStorageForPresentation,
    MediaStorageSOPInstanceUID: id.sopInstanceUid,
    TransferSyntaxUID: transferSyntaxUid,
    ImplementationClassUID: IMPLEMENTATION_CLASS_UID,
    ImplementationVersionName: IMPLEMENTATION_VERSION_NAME,
  });
  const dict = DicomMetaDictionary.denaturalizeDataset(phantomDataset(image, id, syntax));
  if (isEncapsulated(syntax)) {
    // dcmjs writes an empty Basic Offset Table item and one fragment (padded to even length) per frame.
    dict['7FE00010'] = { vr: 'OB', Value: [toArrayBuffer(encodeFrame(image, syntax))] };
  } else {
    dict['7FE00010'] = { vr: 'OW', Value: [littleEndianBytes(image.pixels)] };
  }
  const file = new DicomDict(meta);
  file.dict = dict;
  return Buffer.from(file.write({ fragmentMultiframe: false }));
}
