import HL7 from 'hl7-standard';
import type { Hl7StandardComponents, Hl7StandardSegment } from 'hl7-standard';
import { GatewayError } from '../errors.js';
import { classCode } from './sr-codes.js';
import { MAX_CONTROL_ID_LENGTH } from './hl7-control-id.js';
import { escapeHl7 } from './hl7-escape.js';
import { toHl7DateTime, type Hl7DateTime } from './hl7-time.js';

/** OBX-11 / OBR-25: P for a first AI result, C when a re-run (late images) corrects one already sent. */
export type ResultStatus = 'P' | 'C';

/** A CE value (identifier^text^coding system). */
export interface Hl7CodedValue {
  code: string;
  text?: string;
  codingSystem?: string;
}

export interface OruPatient {
  /** PatientID (0010,0020). */
  id: string;
  /** IssuerOfPatientID (0010,0021); goes to the assigning authority of PID-3. */
  issuer?: string;
  /** PatientName (0010,0010) as DICOM writes it: Family^Given^Middle^Prefix^Suffix[=ideographic=phonetic]. */
  name: string;
  /** PatientBirthDate (0010,0030), YYYYMMDD. */
  birthDate?: string;
  /** PatientSex (0010,0040): M, F or O. */
  sex?: string;
}

export interface OruOrder {
  /** Placer order number (ORC-2 / OBR-2). */
  placer: string;
  /** Filler order number (ORC-3 / OBR-3). */
  filler: string;
  /** AccessionNumber (0008,0050); OBR-18, which most RIS match results on. */
  accession: string;
  /** Universal service identifier (OBR-4). */
  procedureCode: Hl7CodedValue;
  /** Diagnostic service section (OBR-24), e.g. RAD. */
  department: string;
}

export interface OruClassification {
  predicted: string;
  /** The model's classes, in the model's order; probabilities[i] belongs to classes[i]. */
  classes: readonly string[];
  probabilities: readonly number[];
}

/** One source image's own result: an OBX group of its own (OBX-4 sub-ID = its 1-based position). */
export interface OruImage {
  /** SOPInstanceUID of the source image. */
  sopInstanceUid: string;
  classification: OruClassification;
  /** SOPInstanceUID of the heatmap Secondary Capture made from this image, when one was sent to the PACS. */
  heatmapSopInstanceUid?: string;
}

/** The rule's priority (routing action `priority`), sent in TQ1-9 and OBR-27.6. */
export type OruPriority = 'urgent' | 'normal';

/** HL7 table 0485 (extended priority codes): urgent results are S (stat), the others R (routine). */
export const PRIORITY_CODES: Readonly<Record<OruPriority, Hl7CodedValue>> = {
  urgent: { code: 'S', text: 'Stat', codingSystem: 'HL70485' },
  normal: { code: 'R', text: 'Routine', codingSystem: 'HL70485' },
};

export interface OruInput {
  sendingApp: string;
  sendingFacility: string;
  receivingApp: string;
  receivingFacility: string;
  /** MSH-7. Passed in, so that the same result builds the same message. */
  timestamp: Hl7DateTime;
  /** MSH-10; see resultControlId. */
  controlId: string;
  patient: OruPatient;
  order: OruOrder;
  /** OBR-7: when the images were taken (StudyDate/StudyTime; see dicomDateTimeToHl7). */
  observationTime: Hl7DateTime;
  /** OBR-22: when the AI result was made. */
  resultTime: Hl7DateTime;
  studyInstanceUid: string;
  classification: OruClassification;
  /** SeriesInstanceUID of the heatmap Secondary Capture, when one was sent to the PACS. */
  scSeriesInstanceUid?: string;
  modelName: string;
  modelVersion: string;
  /** Sent as an NTE after the OBR, e.g. "AI research result, not for diagnostic use." */
  intendedUse: string;
  resultStatus: ResultStatus;
  /** Each image's own result, in the order the groups are sent; none leaves only the study-level summary. */
  images?: readonly OruImage[];
  /** The routing rule's priority; normal when left out. */
  priority?: OruPriority;
  /** Site OBX-3 codes in place of ours (OBSERVATION_CODES); the study's 113014 is not among them (see SiteObservationCodes). */
  observationCodes?: SiteObservationCodes;
  /** Site OBX-3 codes of class probabilities, by the model's class name; probabilityCode() for the others. */
  probabilityCodes?: Readonly<Record<string, Hl7CodedValue>>;
}

/** Our own codes use a local coding system ('99' prefix: HL7's convention for locally defined tables). */
export const LOCAL_CODING_SYSTEM = '99CXR';

export const OBSERVATION_CODES = {
  study: { code: '113014', text: 'DICOM Study', codingSystem: 'DCM' },
  classification: { code: 'CXR-CLASS', text: 'AI classification', codingSystem: LOCAL_CODING_SYSTEM },
  heatmapSeries: { code: 'CXR-HEATMAP', text: 'AI heatmap series', codingSystem: LOCAL_CODING_SYSTEM },
  model: { code: 'CXR-MODEL', text: 'AI model', codingSystem: LOCAL_CODING_SYSTEM },
  sourceImage: { code: 'CXR-IMAGE', text: 'Source image SOP Instance UID', codingSystem: LOCAL_CODING_SYSTEM },
  heatmapImage: { code: 'CXR-HEATMAP-SOP', text: 'AI heatmap SOP Instance UID', codingSystem: LOCAL_CODING_SYSTEM },
} as const;

/**
 * The OBX-3 codes a site may replace. The study's (113014 DICOM Study, DCM) stays ours: it is a standard code, and
 * the RIS delivery finds the Study Instance UID of a message by it (ris-mllp-destination studyUidOf).
 */
export type SiteObservationCodes = Partial<Record<Exclude<keyof typeof OBSERVATION_CODES, 'study'>, Hl7CodedValue>>;

/** OBX-3 of the probability of one class: CXR-PROB-<CLASS>^Probability <class>^99CXR. */
export function probabilityCode(className: string): Hl7CodedValue {
  const slug = className
    .toUpperCase()
    .replace(/[^A-Z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '');
  return { code: `CXR-PROB-${slug || 'CLASS'}`, text: `Probability ${className}`, codingSystem: LOCAL_CODING_SYSTEM };
}

/** OBX-6 of every probability: UCUM "1" (a ratio 0..1, not a percentage), so the value needs no scaling. */
export const PROBABILITY_UNITS: Hl7CodedValue = { code: '1', text: '', codingSystem: 'UCUM' };

/**
 * OBX-5 of a class (CWE): the code the SR uses for it (SNOMED CT for the known classes, our 99CXRGW scheme
 * otherwise), coding system name in CWE-3, and the model's own class name as original text (CWE-9).
 */
export function classValue(className: string): string[] {
  const c = classCode(className);
  return [c.CodeValue, c.CodeMeaning, c.CodingSchemeDesignator, '', '', '', '', '', className.trim()];
}

/**
 * DICOM PN components (Family^Given^Middle^Prefix^Suffix) in XPN order (Family^Given^Middle^Suffix^Prefix):
 * the two orders differ in the last two. Only the alphabetic group (before the first '=') is used; DICOM
 * pads with spaces, which are not part of the name.
 */
export function dicomPersonNameToXpn(personName: string): string[] {
  const alphabetic = personName.split('=')[0] ?? '';
  const [family = '', given = '', middle = '', prefix = '', suffix = ''] = alphabetic.split('^').map((c) => c.trim());
  return [family, given, middle, suffix, prefix];
}

/** DICOM PatientSex to HL7 table 0001; an unexpected value becomes U (unknown) rather than a wrong sex. */
export function dicomSexToHl7(sex: string | undefined): string {
  const value = (sex ?? '').trim().toUpperCase();
  if (value === '') return '';
  return value === 'M' || value === 'F' || value === 'O' ? value : 'U';
}

/**
 * Builds an ORU^R01 (v2.5.1) with the layout of docs dicom-hl7-outputs.md:
 * MSH, PID, ORC|RE, OBR, NTE (intended use), TQ1 (priority), then the study-level summary (OBX study UID, OBX
 * class as CWE, OBX per class probability, OBX heatmap series when there is one, OBX model), then one OBX group
 * per image, OBX-4 = the image's position (OBX image SOP Instance UID, class, probabilities, heatmap SC SOP
 * Instance UID when there is one); every OBX-11 and OBR-25 carry the result status. docs/hl7-interface.md
 * maps every field.
 *
 * Built with hl7-standard, one field at a time by index (the library shifts fields when a segment is set
 * from an object with gaps). What the library does not do, we do around it: every value is escaped here
 * (it writes values verbatim), and the trailing '|' it puts on every segment is removed so the segments are
 * exactly as the guide shows them. Segments are separated and terminated by '\r'.
 */
export function buildOruR01(input: OruInput): string {
  validate(input);
  const status = input.resultStatus;
  const { classification, order, patient } = input;
  const message = new HL7('', { lineEndings: '\r' });

  const msh = message.createSegment('MSH');
  // MSH-1 is the '|' after the segment name; MSH-2 holds the other encoding characters verbatim.
  msh.set('MSH.2', '^~\\&');
  setFields(msh, 3, [
    [input.sendingApp],
    [input.sendingFacility],
    [input.receivingApp],
    [input.receivingFacility],
    [toHl7DateTime(input.timestamp, 'message timestamp')],
    [],
    ['ORU', 'R01', 'ORU_R01'],
    [input.controlId],
    ['P'],
    ['2.5.1'],
    [],
    [],
    ['AL'],
    ['NE'],
  ]);

  setFields(message.createSegment('PID'), 1, [
    ['1'],
    [],
    [patient.id.trim(), '', '', (patient.issuer ?? '').trim()],
    [],
    dicomPersonNameToXpn(patient.name),
    [],
    [(patient.birthDate ?? '').trim()],
    [dicomSexToHl7(patient.sex)],
  ]);

  const priority = PRIORITY_CODES[input.priority ?? 'normal'];
  setFields(message.createSegment('ORC'), 1, [['RE'], [order.placer.trim()], [order.filler.trim()], [], ['CM']]);

  const obr: string[][] = [];
  obr[1] = ['1'];
  obr[2] = [order.placer.trim()];
  obr[3] = [order.filler.trim()];
  obr[4] = coded(order.procedureCode);
  obr[7] = [toHl7DateTime(input.observationTime, 'observation time (OBR-7)')];
  obr[18] = [order.accession.trim()];
  obr[22] = [toHl7DateTime(input.resultTime, 'result time (OBR-22)')];
  obr[24] = [order.department.trim()];
  obr[25] = [status];
  // OBR-27 is kept in v2.5.1 only for backward compatibility; engines still on v2.3 mappings read its priority.
  obr[27] = ['', '', '', '', '', priority.code];
  setFields(message.createSegment('OBR'), 1, fill(obr.slice(1)));

  setFields(message.createSegment('NTE'), 1, [['1'], ['L'], [input.intendedUse]]);
  // v2.5.1 moved priority from ORC-7/OBR-27 (TQ, deprecated) to TQ1-9, after the order's NTE (ORU_R01 TIMING_QTY).
  setFields(message.createSegment('TQ1'), 1, [['1'], [], [], [], [], [], [], [], coded(priority)]);

  const codes = { ...OBSERVATION_CODES, ...input.observationCodes };
  const probCode = (className: string) => input.probabilityCodes?.[className] ?? probabilityCode(className);
  let setId = 0;
  const obx = (valueType: string, code: Hl7CodedValue, value: readonly string[], units?: Hl7CodedValue, subId = '') => {
    setId += 1;
    setFields(message.createSegment('OBX'), 1, [
      [String(setId)],
      [valueType],
      coded(code),
      [subId],
      value,
      units ? coded(units) : [],
      [],
      [],
      [],
      [],
      [status],
    ]);
  };
  const classificationObx = (c: OruClassification, subId: string) => {
    obx('CWE', codes.classification, classValue(c.predicted), undefined, subId);
    c.classes.forEach((className, i) => {
      const probability = formatProbability(c.probabilities[i] ?? Number.NaN);
      obx('NM', probCode(className), [probability], PROBABILITY_UNITS, subId);
    });
  };
  obx('ST', OBSERVATION_CODES.study, [input.studyInstanceUid.trim()]);
  classificationObx(classification, '');
  if (input.scSeriesInstanceUid !== undefined && input.scSeriesInstanceUid.trim() !== '') {
    obx('ST', codes.heatmapSeries, [input.scSeriesInstanceUid.trim()]);
  }
  obx('ST', codes.model, [`${input.modelName.trim()} ${input.modelVersion.trim()}`.trim()]);
  (input.images ?? []).forEach((image, k) => {
    const subId = String(k + 1);
    obx('ST', codes.sourceImage, [image.sopInstanceUid.trim()], undefined, subId);
    classificationObx(image.classification, subId);
    const heatmap = image.heatmapSopInstanceUid?.trim() ?? '';
    if (heatmap !== '') obx('ST', codes.heatmapImage, [heatmap], undefined, subId);
  });

  return (
    message
      .build()
      .split('\r')
      .map((segment) => segment.replace(/\|+$/, ''))
      .join('\r') + '\r'
  );
}

/** Probabilities as NM with at most four decimals: 0.87, 1, 0.0312. */
export function formatProbability(probability: number): string {
  return String(Number(probability.toFixed(4)));
}

/**
 * Sets consecutive fields starting at `first`, each given as its components (unescaped; escaped here).
 * Trailing empty components are left out, as v2.5.1 2.5.3 recommends.
 */
function setFields(segment: Hl7StandardSegment, first: number, fields: readonly (readonly string[])[]): void {
  fields.forEach((components, offset) => {
    const index = first + offset;
    const key = `${segment.type}.${index}`;
    const escaped = components.map((c) => escapeHl7(c));
    while (escaped.length > 0 && escaped[escaped.length - 1] === '') escaped.pop();
    if (escaped.length <= 1) {
      segment.set(key, escaped[0] ?? '');
      return;
    }
    const value: Hl7StandardComponents = {};
    escaped.forEach((component, k) => (value[`${key}.${k + 1}`] = component));
    segment.set(key, value);
  });
}

function fill(sparse: (string[] | undefined)[]): string[][] {
  return Array.from(sparse, (field) => field ?? []);
}

function coded(value: Hl7CodedValue): string[] {
  return [value.code.trim(), (value.text ?? '').trim(), (value.codingSystem ?? '').trim()];
}

function validate(input: OruInput): void {
  const fail = (message: string): never => {
    throw new GatewayError('HL7_BAD_ORU_INPUT', message);
  };
  const id = input.controlId;
  if (id.length === 0 || id.length > MAX_CONTROL_ID_LENGTH || !/^[!-~]+$/.test(id) || /[|^~\\&]/.test(id)) {
    fail(`control ID '${id}' must be 1 to ${MAX_CONTROL_ID_LENGTH} printable characters without HL7 delimiters`);
  }
  if (input.resultStatus !== 'P' && input.resultStatus !== 'C')
    fail(`result status must be P or C, got '${String(input.resultStatus)}'`);
  if (input.studyInstanceUid.trim() === '') fail('the result has no StudyInstanceUID');
  const probCode = (className: string) => (input.probabilityCodes?.[className] ?? probabilityCode(className)).code;
  validateClassification(input.classification, probCode, fail);
  for (const image of input.images ?? []) {
    if (image.sopInstanceUid.trim() === '') fail('an image of the result has no SOPInstanceUID');
    validateClassification(image.classification, probCode, fail);
  }
  const obx3 = [OBSERVATION_CODES.study, ...Object.values({ ...OBSERVATION_CODES, ...input.observationCodes })];
  for (const code of [...obx3, ...Object.values(input.probabilityCodes ?? {})]) {
    if (code.code.trim() === '') fail('an OBX-3 code is empty');
  }
  if (input.priority !== undefined && !Object.hasOwn(PRIORITY_CODES, input.priority))
    fail(`priority must be urgent or normal, got '${String(input.priority)}'`);
}

function validateClassification(
  classification: OruClassification,
  probCode: (className: string) => string,
  fail: (message: string) => never,
): void {
  const { classes, probabilities, predicted } = classification;
  if (classes.length === 0) fail('the classification has no classes');
  if (classes.length !== probabilities.length) {
    fail(`the classification has ${classes.length} classes but ${probabilities.length} probabilities`);
  }
  if (new Set(classes).size !== classes.length)
    fail(`the classification's classes are not distinct: ${classes.join(', ')}`);
  const codes = classes.map(probCode);
  if (new Set(codes).size !== codes.length)
    fail(`classes ${classes.join(', ')} give the same OBX-3 code (${codes.join(', ')})`);
  if (!classes.includes(predicted)) fail(`predicted class '${predicted}' is not one of ${classes.join(', ')}`);
  probabilities.forEach((p, i) => {
    if (!Number.isFinite(p) || p < 0 || p > 1) fail(`probability of '${classes[i] ?? i}' is ${p}, not within 0..1`);
  });
}
