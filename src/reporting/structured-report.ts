// The classification as a Comprehensive SR (PS3.3 A.35.3) for archives and viewers that read structured
// results: predicted class and every probability as coded content, the device that produced them, and
// references to the source image and the heatmap Secondary Capture. The tree follows TID 1500's shape
// (Imaging Measurement Report > Imaging Measurements > Measurement Group) without claiming conformance to the
// template: no ContentTemplateSequence, so no reader holds it to rows it does not have.
// Always UNVERIFIED and PRELIMINARY: no person has signed it.

import type { NaturalDataset } from 'dcmjs';
import { checkRevision } from './output-revision.js';
import { derivedInstanceUid, derivedSeriesUid } from './derived-uids.js';
import { dicomMoment } from './dicom-datetime.js';
import { seriesDescription } from './output-notice.js';
import { isAscii, writePart10 } from './part10-writer.js';
import {
  DEFAULT_USAGE_NOTICE,
  describeMethod,
  probabilityList,
  type ClassificationSummary,
  type ExplanationSummary,
  type OutputModelInfo,
} from './report-inputs.js';
import type { DerivedObject } from './secondary-capture.js';
import { CODES, LOCAL_SCHEME, LOCAL_SCHEME_IDENTIFICATION, classCode, type Code } from './sr-codes.js';
import { readSourceInstance, type SourceInstance } from './source-instance.js';

export const COMPREHENSIVE_SR_SOP_CLASS_UID = '1.2.840.10008.5.1.4.1.1.88.33';

/** SR series numbers sit above the heatmap series (9000 + source series). */
export const SR_SERIES_NUMBER_BASE = 9500;

export interface StructuredReportRequest {
  source: Uint8Array | SourceInstance;
  model: OutputModelInfo;
  classification: ClassificationSummary;
  /** How the referenced heatmaps were made (named in the SR); leave out when there are none. */
  explanation?: ExplanationSummary;
  /** The heatmap objects (writeSecondaryCapture results) to reference; may be empty. */
  heatmaps: ReadonlyArray<Pick<DerivedObject, 'sopClassUid' | 'sopInstanceUid' | 'seriesInstanceUid'>>;
  revision: number;
  /** The earlier revision whose SR this one replaces: referenced as Predecessor Document. */
  supersedesRevision?: number;
  createdAt: Date;
  usageNotice?: string;
  seriesNumber?: number;
  instanceNumber?: number;
}

type ContentItem = NaturalDataset;

const codeItem = (relationship: string, concept: Code, value: Code, children?: ContentItem[]): ContentItem => ({
  RelationshipType: relationship,
  ValueType: 'CODE',
  ConceptNameCodeSequence: [concept],
  ConceptCodeSequence: [value],
  ...(children ? { ContentSequence: children } : {}),
});

const textItem = (relationship: string, concept: Code, value: string): ContentItem => ({
  RelationshipType: relationship,
  ValueType: 'TEXT',
  ConceptNameCodeSequence: [concept],
  TextValue: value,
});

const uidItem = (relationship: string, concept: Code, value: string): ContentItem => ({
  RelationshipType: relationship,
  ValueType: 'UIDREF',
  ConceptNameCodeSequence: [concept],
  UID: value,
});

const imageItem = (relationship: string, ref: { sopClassUid: string; sopInstanceUid: string }): ContentItem => ({
  RelationshipType: relationship,
  ValueType: 'IMAGE',
  ReferencedSOPSequence: [{ ReferencedSOPClassUID: ref.sopClassUid, ReferencedSOPInstanceUID: ref.sopInstanceUid }],
});

const containerItem = (relationship: string, concept: Code, children: ContentItem[]): ContentItem => ({
  RelationshipType: relationship,
  ValueType: 'CONTAINER',
  ConceptNameCodeSequence: [concept],
  ContinuityOfContent: 'SEPARATE',
  ContentSequence: children,
});

/** DS holds at most 16 characters; six decimals keep every probability well inside that. */
function decimal(p: number): string {
  return (Number.isFinite(p) ? Math.min(1, Math.max(0, p)) : 0).toFixed(6);
}

export function writeStructuredReport(request: StructuredReportRequest): DerivedObject {
  const source = request.source instanceof Uint8Array ? readSourceInstance(request.source) : request.source;
  const { model, classification } = request;
  checkRevision(request.revision, request.supersedesRevision);
  const modelKey = { modelUid: model.modelUid, version: model.version };
  const uids = (revision: number) => ({
    sopInstanceUid: derivedInstanceUid({
      sourceSopInstanceUid: source.sopInstanceUid,
      model: modelKey,
      kind: 'classification-sr',
      revision,
    }),
    seriesInstanceUid: derivedSeriesUid({
      sourceSeriesInstanceUid: source.seriesInstanceUid,
      model: modelKey,
      kind: 'classification-sr',
      revision,
    }),
  });
  const { sopInstanceUid, seriesInstanceUid } = uids(request.revision);
  const now = dicomMoment(request.createdAt);
  const usageNotice = request.usageNotice ?? DEFAULT_USAGE_NOTICE;
  const sourceRef = { sopClassUid: source.sopClassUid, sopInstanceUid: source.sopInstanceUid };
  const inferredFromSource = imageItem('INFERRED FROM', sourceRef);

  const measurements: ContentItem[] = [
    textItem('HAS CONCEPT MOD', CODES.algorithmName, model.name),
    textItem('HAS CONCEPT MOD', CODES.algorithmVersion, model.version),
    codeItem('CONTAINS', CODES.finding, classCode(classification.predicted), [inferredFromSource]),
    ...probabilityList(classification).map(({ name, probability }) => ({
      RelationshipType: 'CONTAINS',
      ValueType: 'NUM',
      ConceptNameCodeSequence: [CODES.probability],
      MeasuredValueSequence: [
        { NumericValue: decimal(probability), MeasurementUnitsCodeSequence: [CODES.probabilityUnit] },
      ],
      ContentSequence: [codeItem('HAS CONCEPT MOD', CODES.finding, classCode(name))],
    })),
    // The heatmaps, as evidence of where the finding comes from.
    ...request.heatmaps.map((h) => imageItem('CONTAINS', h)),
  ];
  const content: ContentItem[] = [
    codeItem('HAS CONCEPT MOD', CODES.language, CODES.english),
    codeItem('HAS OBS CONTEXT', CODES.observerType, CODES.device),
    uidItem('HAS OBS CONTEXT', CODES.deviceObserverUid, model.modelUid),
    textItem('HAS OBS CONTEXT', CODES.deviceObserverName, model.name),
    textItem('HAS OBS CONTEXT', CODES.deviceObserverManufacturer, model.manufacturer),
    textItem('HAS OBS CONTEXT', CODES.deviceObserverModelName, `${model.name} ${model.version}`),
    codeItem('HAS CONCEPT MOD', CODES.procedureReported, CODES.plainChestXray),
    containerItem('CONTAINS', CODES.imageLibrary, [
      imageItem('CONTAINS', sourceRef),
      ...request.heatmaps.map((h) => imageItem('CONTAINS', h)),
    ]),
    containerItem('CONTAINS', CODES.imagingMeasurements, [
      containerItem('CONTAINS', CODES.measurementGroup, measurements),
    ]),
  ];
  const comment = [
    usageNotice,
    request.explanation && request.heatmaps.length > 0
      ? `Heatmap: ${describeMethod(request.explanation)} for '${request.explanation.targetClass}'.`
      : '',
    request.supersedesRevision === undefined
      ? ''
      : `Corrected result: replaces the report of revision ${request.supersedesRevision}.`,
  ]
    .filter((s) => s !== '')
    .join(' ');
  if (comment !== '') content.push(textItem('CONTAINS', CODES.comment, comment));

  // Evidence: every instance the content references, grouped by series (all in the source's study).
  const evidenceSeries = new Map<string, Array<{ ReferencedSOPClassUID: string; ReferencedSOPInstanceUID: string }>>();
  const addEvidence = (series: string, ref: { sopClassUid: string; sopInstanceUid: string }) => {
    const list = evidenceSeries.get(series) ?? [];
    if (!list.some((r) => r.ReferencedSOPInstanceUID === ref.sopInstanceUid))
      list.push({ ReferencedSOPClassUID: ref.sopClassUid, ReferencedSOPInstanceUID: ref.sopInstanceUid });
    evidenceSeries.set(series, list);
  };
  addEvidence(source.seriesInstanceUid, sourceRef);
  for (const h of request.heatmaps) addEvidence(h.seriesInstanceUid, h);

  const usesLocalCodes = [classification.predicted, ...classification.classes].some(
    (c) => classCode(c).CodingSchemeDesignator === LOCAL_SCHEME,
  );
  const predecessor = request.supersedesRevision === undefined ? undefined : uids(request.supersedesRevision);
  const dataset: NaturalDataset = {
    InstanceCreationDate: now.date,
    InstanceCreationTime: now.time,
    SOPClassUID: COMPREHENSIVE_SR_SOP_CLASS_UID,
    SOPInstanceUID: sopInstanceUid,
    ...source.patientStudy,
    SeriesDate: now.date,
    SeriesTime: now.time,
    ContentDate: now.date,
    ContentTime: now.time,
    Modality: 'SR',
    Manufacturer: model.manufacturer,
    ManufacturerModelName: model.name,
    SoftwareVersions: [model.version, `cxr-gateway ${model.softwareVersions}`],
    SeriesDescription: seriesDescription({
      what: 'AI result (SR)',
      usageNotice,
      supersedesRevision: request.supersedesRevision,
    }),
    ReferencedPerformedProcedureStepSequence: [],
    ...(usesLocalCodes ? { CodingSchemeIdentificationSequence: [LOCAL_SCHEME_IDENTIFICATION] } : {}),
    SeriesInstanceUID: seriesInstanceUid,
    SeriesNumber: request.seriesNumber ?? SR_SERIES_NUMBER_BASE + (source.seriesNumber ?? 0),
    InstanceNumber: request.instanceNumber ?? source.instanceNumber ?? 1,
    ValueType: 'CONTAINER',
    ConceptNameCodeSequence: [CODES.imagingMeasurementReport],
    ContinuityOfContent: 'SEPARATE',
    PreliminaryFlag: 'PRELIMINARY',
    CompletionFlag: 'COMPLETE',
    VerificationFlag: 'UNVERIFIED',
    ...(predecessor
      ? {
          PredecessorDocumentsSequence: [
            {
              StudyInstanceUID: source.studyInstanceUid,
              ReferencedSeriesSequence: [
                {
                  SeriesInstanceUID: predecessor.seriesInstanceUid,
                  ReferencedSOPSequence: [
                    {
                      ReferencedSOPClassUID: COMPREHENSIVE_SR_SOP_CLASS_UID,
                      ReferencedSOPInstanceUID: predecessor.sopInstanceUid,
                    },
                  ],
                },
              ],
            },
          ],
        }
      : {}),
    CurrentRequestedProcedureEvidenceSequence: [
      {
        StudyInstanceUID: source.studyInstanceUid,
        ReferencedSeriesSequence: [...evidenceSeries].map(([series, refs]) => ({
          SeriesInstanceUID: series,
          ReferencedSOPSequence: refs,
        })),
      },
    ],
    PerformedProcedureCodeSequence: [],
    ContentSequence: content,
  };
  if (!isAscii(dataset)) dataset.SpecificCharacterSet = 'ISO_IR 192';
  return {
    bytes: writePart10(dataset),
    sopClassUid: COMPREHENSIVE_SR_SOP_CLASS_UID,
    sopInstanceUid,
    seriesInstanceUid,
  };
}
