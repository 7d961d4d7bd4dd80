// What a derived object takes from the image it was derived from: the identity of patient and study (so the PACS
// files it in the same study), the references back to the source, and the geometry facts that stay true.

import dcmjs from 'dcmjs';
import type { NaturalDataset } from 'dcmjs';
import { GatewayError, describeError } from '../errors.js';
import { isValidUid } from '../dicom/uids.js';
import { dcmjsReadable, personNameGroups, readDatasetText } from '../dicom/dataset-text.js';

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

const KEYWORD_TAGS: Readonly<Record<(typeof PATIENT_AND_STUDY)[number] | (typeof OPTIONAL_STUDY)[number], string>> = {
  PatientName: '00100010',
  PatientID: '00100020',
  PatientBirthDate: '00100030',
  PatientSex: '00100040',
  StudyInstanceUID: '0020000D',
  StudyDate: '00080020',
  StudyTime: '00080030',
  AccessionNumber: '00080050',
  StudyID: '00200010',
  ReferringPhysicianName: '00080090',
  IssuerOfPatientID: '00100021',
  StudyDescription: '00081030',
};

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
  /**
   * Placer/Filler Order Number / Imaging Service Request (0040,2016)/(0040,2017) of the first item of the Request
   * Attributes Sequence (0040,0275) that has either; '' when absent.
   */
  order: { placer: string; filler: string };
  /** Whether the source's pixels went through lossy compression, and how (PS3.3 C.7.6.1.1.5). */
  lossyCompression: LossyCompression;
}

/**
 * Lossy Image Compression of a source: once lossy, always lossy, so an image derived from it carries the flag and
 * the source's ratios and methods (in order).
 */
export interface LossyCompression {
  lossy: boolean;
  /** Lossy Image Compression Ratio (0028,2112) values, in order ([] when unknown). */
  ratios: number[];
  /** Lossy Image Compression Method (0028,2114) values, in order ([] when unknown). */
  methods: string[];
}

/**
 * The defined terms of Lossy Image Compression Method (PS3.3 C.7.6.1.1.5.1) for the lossy transfer syntaxes we
 * decode (src/imaging/transfer-syntaxes.ts): a file in one of them is lossy even when it does not say so.
 */
const LOSSY_SYNTAX_METHOD: ReadonlyMap<string, string> = new Map([
  ['1.2.840.10008.1.2.4.50', 'ISO_10918_1'], // JPEG Baseline
  ['1.2.840.10008.1.2.4.51', 'ISO_10918_1'], // JPEG Extended
  ['1.2.840.10008.1.2.4.81', 'ISO_14495_1'], // JPEG-LS Near-Lossless
  ['1.2.840.10008.1.2.4.91', 'ISO_15444_1'], // JPEG 2000 (irreversible)
  ['1.2.840.10008.1.2.4.203', 'ISO_15444_15'], // High-Throughput JPEG 2000
  ['1.2.840.10008.1.2.4.112', 'ISO_18181_1'], // JPEG XL
]);

/** Reads the attributes of a Part 10 source instance, stopping before its pixel data. */
export function readSourceInstance(part10: Uint8Array): SourceInstance {
  let natural: NaturalDataset;
  let sourceText: ReturnType<typeof readDatasetText>;
  let transferSyntaxUid = '';
  try {
    // dcmjs gives the structure (natural values of every VR); it refuses ISO 2022 code extensions, so it parses a
    // copy with those blanked, and the text we copy is decoded by us with the real character set.
    const buffer = new Uint8Array(dcmjsReadable(part10)).buffer;
    const dict = DicomMessage.readFile(buffer, {
      untilTag: '7FE00010',
      includeUntilTagValue: false,
      ignoreErrors: true,
    });
    natural = DicomMetaDictionary.naturalizeDataset(dict.dict);
    transferSyntaxUid = text(DicomMetaDictionary.naturalizeDataset(dict.meta).TransferSyntaxUID);
    sourceText = readDatasetText(part10, 'the source image');
  } catch (cause) {
    // The store walked this file before acknowledging it: a file that cannot be read now changed on our disk.
    throw new GatewayError(
      'SOURCE_UNREADABLE',
      `the stored source image cannot be read as a DICOM Part 10 file (${describeError(cause)}); it changed on the gateway's disk after it was received: restore it from the PACS and send it again`,
      { cause },
    );
  }
  // Text attributes copied into derived objects and HL7: decoded with the source's Specific Character Set
  // (the writers declare ISO_IR 192 when any of it is beyond ASCII).
  for (const keyword of [...PATIENT_AND_STUDY, ...OPTIONAL_STUDY]) {
    const tag = KEYWORD_TAGS[keyword];
    const values = sourceText.values(tag);
    // Absent or empty: dcmjs's value (Type 2: present, empty) stays as it was.
    if (values === undefined || values.every((v) => v === '')) continue;
    const vr = sourceText.vr(tag);
    if (vr === 'PN') natural[keyword] = values.map(personNameGroups);
    else if (vr === 'LO' || vr === 'SH' || vr === 'LT' || vr === 'ST' || vr === 'UC' || vr === 'UT')
      natural[keyword] = values.length === 1 ? values[0] : values;
  }
  const uid = (keyword: string): string => {
    const v = text(natural[keyword]);
    if (!isValidUid(v)) {
      throw new GatewayError(
        'SOURCE_INCOMPLETE',
        `the source image has no valid ${keyword}; the sender must provide one before results can be stored with it`,
      );
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
    order: requestedOrder(natural.RequestAttributesSequence),
    lossyCompression: lossyCompression(natural, transferSyntaxUid),
  };
}

/**
 * What the source says about lossy compression, completed from its transfer syntax: the pixels as stored are
 * lossy in a lossy syntax whatever the flag says, and the method is then the syntax's own (appended, in order, when
 * the source lists earlier ones that do not end with it).
 */
function lossyCompression(natural: NaturalDataset, transferSyntaxUid: string): LossyCompression {
  const flagged = text(natural.LossyImageCompression) === '01';
  const ratios = values(natural.LossyImageCompressionRatio)
    .map((v) => Number(v))
    .filter((n) => Number.isFinite(n) && n > 0);
  const methods = values(natural.LossyImageCompressionMethod).filter((m) => m !== '');
  const syntaxMethod = LOSSY_SYNTAX_METHOD.get(transferSyntaxUid);
  if (syntaxMethod !== undefined && methods.at(-1) !== syntaxMethod) methods.push(syntaxMethod);
  return { lossy: flagged || syntaxMethod !== undefined, ratios, methods };
}

/** Every value of a natural attribute as trimmed text. */
function values(v: unknown): string[] {
  return (Array.isArray(v) ? v : v === undefined || v === null ? [] : [v]).map(text);
}

/** The order numbers of a Request Attributes Sequence: from the first item that has one (an image may serve several requests). */
function requestedOrder(sequence: unknown): { placer: string; filler: string } {
  const items: unknown[] = Array.isArray(sequence) ? sequence : sequence ? [sequence] : [];
  for (const item of items) {
    if (!item || typeof item !== 'object') continue;
    const record = item as Record<string, unknown>;
    const placer = text(record.PlacerOrderNumberImagingServiceRequest);
    const filler = text(record.FillerOrderNumberImagingServiceRequest);
    if (placer !== '' || filler !== '') return { placer, filler };
  }
  return { placer: '', filler: '' };
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
