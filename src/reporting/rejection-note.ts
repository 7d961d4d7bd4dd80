// The IHE IOCM way to withdraw a superseded result: a Key Object Selection Document (PS3.3 A.35.4, TID 2010)
// whose title is (113001, DCM, "Rejected for Quality Reasons") and which lists every instance being withdrawn.
// A PACS that implements IOCM hides what a rejection note lists; one that does not files the note as one more
// series, which says in its description what it withdraws. Written once per corrected revision, after that
// revision's own objects, with UIDs derived from (study, model, revision): a re-run writes the same note.

import type { NaturalDataset } from 'dcmjs';
import { GatewayError } from '../errors.js';
import { checkRevision } from './output-revision.js';
import { derivedSeriesUid, studyInstanceUid } from './derived-uids.js';
import { dicomMoment } from './dicom-datetime.js';
import { isAscii, writePart10 } from './part10-writer.js';
import type { OutputModelInfo } from './report-inputs.js';
import { SC_SOP_CLASS_UID, type DerivedObject } from './secondary-capture.js';
import { outputSeriesNumber } from './series-numbers.js';
import { readSourceInstance, type SourceInstance } from './source-instance.js';
import type { ObjectRef } from './structured-report.js';

export const KEY_OBJECT_SELECTION_SOP_CLASS_UID = '1.2.840.10008.5.1.4.1.1.88.59';

/** The document title IOCM gives a rejection of instances of poor quality (CID 7011). */
export const REJECTED_FOR_QUALITY_REASONS = {
  CodeValue: '113001',
  CodingSchemeDesignator: 'DCM',
  CodeMeaning: 'Rejected for Quality Reasons',
};

const KEY_OBJECT_DESCRIPTION = {
  CodeValue: '113012',
  CodingSchemeDesignator: 'DCM',
  CodeMeaning: 'Key Object Description',
};

/** SOP classes referenced as IMAGE content items; anything else (our SR) is a COMPOSITE item. */
const IMAGE_SOP_CLASSES: ReadonlySet<string> = new Set(Object.values(SC_SOP_CLASS_UID));

export interface RejectionNoteRequest {
  /** One source image of the study (Part 10 bytes or already read): the note's patient and study. */
  source: Uint8Array | SourceInstance;
  model: OutputModelInfo;
  /** The revision that replaces the rejected one (the note belongs to it: its UIDs and series number). */
  revision: number;
  /** The revision whose objects are withdrawn. */
  rejectedRevision: number;
  /** Every instance of that revision that was sent, at least one. */
  rejected: readonly ObjectRef[];
  createdAt: Date;
}

export function writeRejectionNote(request: RejectionNoteRequest): DerivedObject {
  const source = request.source instanceof Uint8Array ? readSourceInstance(request.source) : request.source;
  const { model, revision } = request;
  checkRevision(revision, request.rejectedRevision);
  if (request.rejected.length === 0)
    throw new GatewayError('INTERNAL', 'a rejection note needs at least one instance to reject');
  const key = {
    studyInstanceUid: source.studyInstanceUid,
    model: { modelUid: model.modelUid, version: model.version },
    kind: 'rejection-kos' as const,
    revision,
  };
  const sopInstanceUid = studyInstanceUid(key);
  const seriesInstanceUid = derivedSeriesUid(key);
  const now = dicomMoment(request.createdAt);

  const bySeries = new Map<string, Array<{ ReferencedSOPClassUID: string; ReferencedSOPInstanceUID: string }>>();
  for (const ref of request.rejected) {
    const list = bySeries.get(ref.seriesInstanceUid) ?? [];
    if (!list.some((r) => r.ReferencedSOPInstanceUID === ref.sopInstanceUid))
      list.push({ ReferencedSOPClassUID: ref.sopClassUid, ReferencedSOPInstanceUID: ref.sopInstanceUid });
    bySeries.set(ref.seriesInstanceUid, list);
  }
  const listed = [...bySeries.values()].flat();
  const description = `Withdraws the AI results of revision ${request.rejectedRevision} (${listed.length} objects), replaced by revision ${revision}`;

  const dataset: NaturalDataset = {
    InstanceCreationDate: now.date,
    InstanceCreationTime: now.time,
    SOPClassUID: KEY_OBJECT_SELECTION_SOP_CLASS_UID,
    SOPInstanceUID: sopInstanceUid,
    ...source.patientStudy,
    Modality: 'KO',
    SeriesInstanceUID: seriesInstanceUid,
    SeriesNumber: outputSeriesNumber('rejection', revision),
    SeriesDate: now.date,
    SeriesTime: now.time,
    SeriesDescription: `AI results r${request.rejectedRevision} rejected (replaced by r${revision})`.slice(0, 64),
    ReferencedPerformedProcedureStepSequence: [],
    Manufacturer: model.manufacturer,
    ManufacturerModelName: model.name,
    SoftwareVersions: [model.version, `cxr-gateway ${model.softwareVersions}`],
    InstanceNumber: 1,
    ContentDate: now.date,
    ContentTime: now.time,
    CurrentRequestedProcedureEvidenceSequence: [
      {
        StudyInstanceUID: source.studyInstanceUid,
        ReferencedSeriesSequence: [...bySeries].map(([series, refs]) => ({
          SeriesInstanceUID: series,
          ReferencedSOPSequence: refs,
        })),
      },
    ],
    ValueType: 'CONTAINER',
    ConceptNameCodeSequence: [REJECTED_FOR_QUALITY_REASONS],
    ContinuityOfContent: 'SEPARATE',
    ContentTemplateSequence: [{ MappingResource: 'DCMR', TemplateIdentifier: '2010' }],
    ContentSequence: [
      {
        RelationshipType: 'CONTAINS',
        ValueType: 'TEXT',
        ConceptNameCodeSequence: [KEY_OBJECT_DESCRIPTION],
        TextValue: description,
      },
      ...listed.map((ref) => ({
        RelationshipType: 'CONTAINS',
        ValueType: IMAGE_SOP_CLASSES.has(ref.ReferencedSOPClassUID) ? 'IMAGE' : 'COMPOSITE',
        ReferencedSOPSequence: [ref],
      })),
    ],
  };
  if (!isAscii(dataset)) dataset.SpecificCharacterSet = 'ISO_IR 192';
  return {
    bytes: writePart10(dataset),
    sopClassUid: KEY_OBJECT_SELECTION_SOP_CLASS_UID,
    sopInstanceUid,
    seriesInstanceUid,
  };
}
