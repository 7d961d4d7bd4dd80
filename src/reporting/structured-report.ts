// A study revision's classification as one Comprehensive SR (PS3.3 A.35.3) for archives and viewers that read
// structured results: for every image, its predicted class and every probability as coded content and its heatmap
// Secondary Capture, plus the device that produced them. The tree follows TID 1500's shape (Imaging Measurement
// Report > Imaging Measurements > one Measurement Group per image) without claiming conformance to the template:
// no ContentTemplateSequence, so no reader holds it to rows it does not have.
// Always UNVERIFIED and PRELIMINARY: no person has signed it.

import type { NaturalDataset } from 'dcmjs';
import { checkRevision } from './output-revision.js';
import { derivedSeriesUid, studyInstanceUid } from './derived-uids.js';
import { outputSeriesNumber } from './series-numbers.js';
import { GatewayError } from '../errors.js';
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

/** A reference to one of our objects (the heatmap of an image, the SR a corrected one replaces). */
export type ObjectRef = Pick<DerivedObject, 'sopClassUid' | 'sopInstanceUid' | 'seriesInstanceUid'>;

/** One image of the study revision, as the report states it. */
export interface ReportedImage {
  /** The source instance's Part 10 bytes, or its attributes, already read. */
  source: Uint8Array | SourceInstance;
  classification: ClassificationSummary;
  /** How its heatmap was made (named in the SR); leave out when it has none. */
  explanation?: ExplanationSummary;
  /** Its heatmap Secondary Capture, when one was written. */
  heatmap?: ObjectRef;
}

export interface StructuredReportRequest {
  /** Every classified image of the study revision (at least one, all of one study), in the heatmap series' order. */
  images: readonly ReportedImage[];
  model: OutputModelInfo;
  revision: number;
  /** The earlier revision this report replaces (named in the series description and the comment). */
  supersedesRevision?: number;
  /** That revision's SR, as it was sent: referenced as Predecessor Document. */
  predecessor?: ObjectRef;
  createdAt: Date;
  usageNotice?: string;
  /** Default the revision's SR series number (series-numbers.ts). */
  seriesNumber?: number;
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
  const images = request.images.map((i) => ({
    ...i,
    source: i.source instanceof Uint8Array ? readSourceInstance(i.source) : i.source,
  }));
  const first = images[0];
  if (first === undefined) throw new GatewayError('INTERNAL', 'a structured report needs at least one image');
  const studyUid = first.source.studyInstanceUid;
  const stray = images.find((i) => i.source.studyInstanceUid !== studyUid);
  if (stray !== undefined)
    throw new GatewayError(
      'INTERNAL',
      `image ${stray.source.sopInstanceUid} is of another study than ${first.source.sopInstanceUid}; one SR covers one study`,
    );
  const { model } = request;
  checkRevision(request.revision, request.supersedesRevision);
  const key = { studyInstanceUid: studyUid, model: { modelUid: model.modelUid, version: model.version } };
  const sopInstanceUid = studyInstanceUid({ ...key, kind: 'classification-sr', revision: request.revision });
  const seriesInstanceUid = derivedSeriesUid({ ...key, kind: 'classification-sr', revision: request.revision });
  const now = dicomMoment(request.createdAt);
  const usageNotice = request.usageNotice ?? DEFAULT_USAGE_NOTICE;
  const refOf = (i: (typeof images)[number]) => ({
    sopClassUid: i.source.sopClassUid,
    sopInstanceUid: i.source.sopInstanceUid,
  });

  // One Measurement Group per image: its finding (inferred from its source), its probabilities and its heatmap.
  const groups: ContentItem[] = images.map((image) =>
    containerItem('CONTAINS', CODES.measurementGroup, [
      textItem('HAS CONCEPT MOD', CODES.algorithmName, model.name),
      textItem('HAS CONCEPT MOD', CODES.algorithmVersion, model.version),
      codeItem('CONTAINS', CODES.finding, classCode(image.classification.predicted), [
        imageItem('INFERRED FROM', refOf(image)),
      ]),
      ...probabilityList(image.classification).map(({ name, probability }) => ({
        RelationshipType: 'CONTAINS',
        ValueType: 'NUM',
        ConceptNameCodeSequence: [CODES.probability],
        MeasuredValueSequence: [
          { NumericValue: decimal(probability), MeasurementUnitsCodeSequence: [CODES.probabilityUnit] },
        ],
        ContentSequence: [codeItem('HAS CONCEPT MOD', CODES.finding, classCode(name))],
      })),
      // The heatmap, as evidence of where the finding comes from.
      ...(image.heatmap ? [imageItem('CONTAINS', image.heatmap)] : []),
    ]),
  );
  const content: ContentItem[] = [
    codeItem('HAS CONCEPT MOD', CODES.language, CODES.english),
    codeItem('HAS OBS CONTEXT', CODES.observerType, CODES.device),
    uidItem('HAS OBS CONTEXT', CODES.deviceObserverUid, model.modelUid),
    textItem('HAS OBS CONTEXT', CODES.deviceObserverName, model.name),
    textItem('HAS OBS CONTEXT', CODES.deviceObserverManufacturer, model.manufacturer),
    textItem('HAS OBS CONTEXT', CODES.deviceObserverModelName, `${model.name} ${model.version}`),
    codeItem('HAS CONCEPT MOD', CODES.procedureReported, CODES.plainChestXray),
    containerItem(
      'CONTAINS',
      CODES.imageLibrary,
      images.flatMap((i) => [
        imageItem('CONTAINS', refOf(i)),
        ...(i.heatmap ? [imageItem('CONTAINS', i.heatmap)] : []),
      ]),
    ),
    containerItem('CONTAINS', CODES.imagingMeasurements, groups),
  ];
  // Each distinct way a heatmap was made, once ("LRP (isnet, ...) for 'COVID-19'").
  const methods = [
    ...new Set(
      images.flatMap((i) =>
        i.explanation && i.heatmap ? [`${describeMethod(i.explanation)} for '${i.explanation.targetClass}'`] : [],
      ),
    ),
  ];
  const comment = [
    usageNotice,
    methods.length === 0 ? '' : `Heatmap: ${methods.join('; ')}.`,
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
  for (const i of images) addEvidence(i.source.seriesInstanceUid, refOf(i));
  for (const i of images) if (i.heatmap) addEvidence(i.heatmap.seriesInstanceUid, i.heatmap);

  const usesLocalCodes = images.some((i) =>
    [i.classification.predicted, ...i.classification.classes].some(
      (c) => classCode(c).CodingSchemeDesignator === LOCAL_SCHEME,
    ),
  );
  const predecessor = request.predecessor;
  const dataset: NaturalDataset = {
    InstanceCreationDate: now.date,
    InstanceCreationTime: now.time,
    SOPClassUID: COMPREHENSIVE_SR_SOP_CLASS_UID,
    SOPInstanceUID: sopInstanceUid,
    ...first.source.patientStudy,
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
    SeriesNumber: request.seriesNumber ?? outputSeriesNumber('sr', request.revision),
    InstanceNumber: 1,
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
              StudyInstanceUID: studyUid,
              ReferencedSeriesSequence: [
                {
                  SeriesInstanceUID: predecessor.seriesInstanceUid,
                  ReferencedSOPSequence: [
                    {
                      ReferencedSOPClassUID: predecessor.sopClassUid,
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
        StudyInstanceUID: studyUid,
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
