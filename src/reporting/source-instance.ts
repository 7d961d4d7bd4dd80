// What a derived object takes from the image it was derived from: the identity of patient and study (so the PACS
// files it in the same study), the references back to the source, and the geometry facts that stay true.

import dcmjs from 'dcmjs';
import type { NaturalDataset } from 'dcmjs';
import { GatewayError, describeError } from '../errors.js';
import { isValidUid } from '../dicom/uids.js';

const { DicomMessage, DicomMetaDictionary } = dcmjs.data;

/** Copied as they are (Type 2 in our IODs: present, empty when the source lacks them). */
const PATIENT_AND_STUDY = [
  'PatientName',
  'PatientID',
  'PatientBirthDate',
  'PatientSex',
  'StudyInstanceUID',
  'StudyDate',
  'StudyTime',
  'AccessionNumber',
  'StudyID',
  'ReferringPhysicianName',
] as const;

/** Copied only when the source has them (Type 3). */
const OPTIONAL_STUDY = ['IssuerOfPatientID', 'StudyDescription'] as const;

export interface SourceInstance {
  sopClassUid: string;
  sopInstanceUid: string;
  seriesInstanceUid: string;
  studyInstanceUid: string;
  seriesNumber: number | undefined;
  instanceNumber: number | undefined;
  /** Patient and General Study attributes as dcmjs natural values, ready to copy into a derived object. */
  patientStudy: NaturalDataset;
  /** PatientOrientation values (empty when the source has none). */
  patientOrientation: string[];
  /** Laterality of the series ('' when absent). */
  laterality: string;
  bodyPartExamined: string | undefined;
}

/** Reads the attributes of a Part 10 source instance, stopping before its pixel data. */
export function readSourceInstance(part10: Uint8Array): SourceInstance {
  let natural: NaturalDataset;
  try {
    const buffer = new Uint8Array(part10).buffer;
    // ignoreErrors: a character set dcmjs cannot decode (ISO 2022 code extensions) falls back to the default
    // repertoire instead of failing the whole output; the UIDs and IDs the PACS matches on are ASCII anyway.
    const dict = DicomMessage.readFile(buffer, { untilTag: '7FE00010', includeUntilTagValue: false, ignoreErrors: true });
    natural = DicomMetaDictionary.naturalizeDataset(dict.dict);
  } catch (cause) {
    throw new GatewayError(
      'SOURCE_UNREADABLE',
      `the source image cannot be read as a DICOM Part 10 file (${describeError(cause)}); it was damaged after it was received, send it again`,
      { cause },
    );
  }
  const uid = (keyword: string): string => {
    const v = text(natural[keyword]);
    if (!isValidUid(v)) {
      throw new GatewayError('SOURCE_INCOMPLETE', `the source image has no valid ${keyword}; the sender must provide one before results can be stored with it`);
    }
    return v;
  };
  const patientStudy: NaturalDataset = {};
  for (const keyword of PATIENT_AND_STUDY) patientStudy[keyword] = natural[keyword] ?? '';
  for (const keyword of OPTIONAL_STUDY) if (natural[keyword] !== undefined) patientStudy[keyword] = natural[keyword];
  patientStudy.StudyInstanceUID = uid('StudyInstanceUID');
  const orientation = natural.PatientOrientation;
  return {
    sopClassUid: uid('SOPClassUID'),
    sopInstanceUid: uid('SOPInstanceUID'),
    seriesInstanceUid: uid('SeriesInstanceUID'),
    studyInstanceUid: uid('StudyInstanceUID'),
    seriesNumber: integer(natural.SeriesNumber),
    instanceNumber: integer(natural.InstanceNumber),
    patientStudy,
    patientOrientation: (Array.isArray(orientation) ? orientation : [orientation]).map(text).filter((s) => s !== ''),
    laterality: text(natural.Laterality),
    bodyPartExamined: text(natural.BodyPartExamined) || undefined,
  };
}

/** The first value of a natural attribute as trimmed text ('' when absent). */
function text(v: unknown): string {
  const first = Array.isArray(v) ? v[0] : v;
  return typeof first === 'string' ? first.trim() : typeof first === 'number' ? String(first) : '';
}

function integer(v: unknown): number | undefined {
  const n = Number(text(v));
  return text(v) !== '' && Number.isInteger(n) ? n : undefined;
}
