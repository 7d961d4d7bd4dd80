import { readFileSync } from 'node:fs';
import type { RisDestination } from '../config/schema.js';
import type { ModelManifest } from '../inference/model-manifest.js';
import { resultControlId } from '../reporting/hl7-control-id.js';
import { buildOruR01, type OruPriority } from '../reporting/hl7-oru.js';
import { dicomDateTimeToHl7 } from '../reporting/hl7-time.js';
import { readSourceInstance } from '../reporting/source-instance.js';
import type { ImageWorkResult } from '../analysis/image-work.js';

type Written = Extract<ImageWorkResult, { kind: 'written' }>;

/**
 * The image a study's report speaks for: with several frontal images, the one with the strongest finding
 * (lowest probability of the class named "normal"; the first image when the model has no such class).
 */
export function studyLevelResult(results: readonly Written[]): Written | undefined {
  const normalIndex = (r: Written) => r.classification.classes.findIndex((c) => c.toLowerCase() === 'normal');
  return [...results].sort((a, b) => {
    const ia = normalIndex(a);
    const ib = normalIndex(b);
    if (ia < 0 || ib < 0) return 0;
    return (a.classification.probabilities[ia] ?? 1) - (b.classification.probabilities[ib] ?? 1);
  })[0];
}

export interface StudyReportInput {
  studyInstanceUid: string;
  revision: number;
  sourcePath: string;
  result: Written;
  /** Every image's result of this revision: one OBX group each, in this order. */
  results: readonly Written[];
  /** The routing rule's priority. */
  priority: OruPriority;
  manifest: Pick<ModelManifest, 'name' | 'version' | 'intendedUse'>;
  ris: RisDestination;
  createdAt: Date;
}

/** The ORU^R01 for one study revision and one RIS: P for the first result, C for a corrected re-run. */
export function buildStudyReport(input: StudyReportInput): { controlId: string; message: string } {
  const source = readSourceInstance(readFileSync(input.sourcePath));
  const ps = source.patientStudy;
  const text = (v: unknown) =>
    typeof v === 'string'
      ? v
      : v && typeof v === 'object' && 'Alphabetic' in v
        ? String((v as { Alphabetic: unknown }).Alphabetic ?? '')
        : v === undefined || v === null
          ? ''
          : String(v);
  const controlId = resultControlId(input.studyInstanceUid, input.revision, input.ris.name);
  const sc = input.result.outputs.find((o) => o.kind === 'sc');
  const accession = text(ps.AccessionNumber);
  // The order numbers the RIS gave the request (Request Attributes Sequence); the accession number stands in for
  // a missing one only when the site allows it (ris.orderNumberFallback), since some RIS match on it instead.
  const fallback = input.ris.orderNumberFallback === 'empty' ? '' : accession;
  const placer = source.order.placer || fallback;
  const filler = source.order.filler || fallback;
  const studyDate = text(ps.StudyDate);
  const message = buildOruR01({
    sendingApp: input.ris.sendingApplication,
    sendingFacility: input.ris.sendingFacility,
    receivingApp: input.ris.receivingApplication,
    receivingFacility: input.ris.receivingFacility,
    timestamp: input.createdAt,
    controlId,
    patient: {
      id: text(ps.PatientID),
      issuer: text(ps.IssuerOfPatientID),
      name: text(ps.PatientName),
      birthDate: text(ps.PatientBirthDate),
      sex: text(ps.PatientSex),
    },
    order: {
      placer,
      filler,
      accession,
      procedureCode: { code: 'CXR-AI', text: 'Chest X-ray AI classification' },
      department: 'RAD',
    },
    observationTime: studyDate ? dicomDateTimeToHl7(studyDate, text(ps.StudyTime)) : input.createdAt,
    resultTime: input.createdAt,
    studyInstanceUid: input.studyInstanceUid,
    classification: input.result.classification,
    ...(sc ? { scSeriesInstanceUid: sc.seriesInstanceUid } : {}),
    modelName: input.manifest.name,
    modelVersion: input.manifest.version,
    intendedUse: input.manifest.intendedUse,
    resultStatus: input.revision > 0 ? 'C' : 'P',
    priority: input.priority,
    // Parsed configs always have both (zod defaults); a hand-built one may not.
    observationCodes: input.ris.observationCodes ?? {},
    probabilityCodes: input.ris.probabilityCodes ?? {},
    images: input.results.map((r) => {
      const heatmap = r.outputs.find((o) => o.kind === 'sc');
      return {
        sopInstanceUid: r.sopInstanceUid,
        classification: r.classification,
        ...(heatmap ? { heatmapSopInstanceUid: heatmap.sopInstanceUid } : {}),
      };
    }),
  });
  return { controlId, message };
}
