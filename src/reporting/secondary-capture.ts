// The heatmap picture as a DICOM Secondary Capture in the source's study, in its own AI series: what the PACS
// shows next to the X-ray. Every attribute of docs' "Heatmap as Secondary Capture" list is here; the IOD is
// Secondary Capture Image (PS3.3 A.8.1) by default, or Multi-frame True Color SC (A.8.5.3) with one frame for
// archives that prefer it. UIDs are derived (derived-uids.ts), so writing the same result twice gives the same
// object, byte for byte, and the PACS files no duplicate.

import type { NaturalDataset } from 'dcmjs';
import { GatewayError } from '../errors.js';
import { checkRevision } from './output-revision.js';
import { derivedInstanceUid, derivedSeriesUid, type DerivedOutputKind } from './derived-uids.js';
import { outputSeriesNumber } from './series-numbers.js';
import { dicomMoment } from './dicom-datetime.js';
import type { RgbImage } from './heatmap-overlay.js';
import { seriesDescription } from './output-notice.js';
import { isAscii, writePart10 } from './part10-writer.js';
import {
  DEFAULT_USAGE_NOTICE,
  describeMethod,
  type ClassificationSummary,
  type ExplanationSummary,
  type OutputModelInfo,
} from './report-inputs.js';
import { readSourceInstance, type SourceInstance } from './source-instance.js';

export type ScSopClass = 'secondary-capture' | 'multiframe-true-color';

export const SC_SOP_CLASS_UID: Record<ScSopClass, string> = {
  'secondary-capture': '1.2.840.10008.5.1.4.1.1.7',
  'multiframe-true-color': '1.2.840.10008.5.1.4.1.1.7.4',
};

const OUTPUT_KIND: Record<ScSopClass, DerivedOutputKind> = {
  'secondary-capture': 'heatmap-sc',
  'multiframe-true-color': 'heatmap-mf-sc',
};

export interface SecondaryCaptureRequest {
  /** The source instance's Part 10 bytes (or its attributes, already read). */
  source: Uint8Array | SourceInstance;
  /** The rendered heatmap (renderHeatmap().image). */
  image: RgbImage;
  model: OutputModelInfo;
  classification: ClassificationSummary;
  explanation: ExplanationSummary;
  /** The study revision this result belongs to; part of the UIDs. 0 for the first. */
  revision: number;
  /** Set when this object replaces those sent for an earlier revision: the series says it is a correction. */
  supersedesRevision?: number;
  /** When the object is created (Content/Instance Creation Date and Time). Passed in for reproducible bytes. */
  createdAt: Date;
  /** Default `secondary-capture` (widest PACS support). */
  sopClass?: ScSopClass;
  /** Default "NOT FOR DIAGNOSTIC USE"; '' when the site's configuration allows diagnostic use. */
  usageNotice?: string;
  /** Default the revision's heatmap series number (series-numbers.ts). */
  seriesNumber?: number;
  /**
   * The image's place in its study's heatmap series (the pipeline numbers a job's images 1..n in a stable order);
   * default the source's Instance Number (1 when it has none).
   */
  instanceNumber?: number;
}

/** A DICOM object we made, ready for a destination to send or store. */
export interface DerivedObject {
  /** Part 10 file bytes (Explicit VR Little Endian). */
  bytes: Buffer;
  sopClassUid: string;
  sopInstanceUid: string;
  seriesInstanceUid: string;
}

/** DCM code: the source image was the input of the processing that made this one. */
const SOURCE_PURPOSE = {
  CodeValue: '121322',
  CodingSchemeDesignator: 'DCM',
  CodeMeaning: 'Source image for image processing operation',
};
/** IHE AI Results: the equipment that contributed is a processing algorithm. */
const PROCESSING_ALGORITHM = {
  CodeValue: 'Newcode1',
  CodingSchemeDesignator: '99IHE',
  CodeMeaning: 'Processing Algorithm',
};

export function writeSecondaryCapture(request: SecondaryCaptureRequest): DerivedObject {
  const source = request.source instanceof Uint8Array ? readSourceInstance(request.source) : request.source;
  const { image, model, explanation } = request;
  const sopClass = request.sopClass ?? 'secondary-capture';
  checkImage(image);
  checkRevision(request.revision, request.supersedesRevision);
  const kind = OUTPUT_KIND[sopClass];
  const modelKey = { modelUid: model.modelUid, version: model.version };
  const sopClassUid = SC_SOP_CLASS_UID[sopClass];
  const sopInstanceUid = derivedInstanceUid({
    sourceSopInstanceUid: source.sopInstanceUid,
    model: modelKey,
    kind,
    revision: request.revision,
    variant: explanation.targetClass,
  });
  // One heatmap series per study and revision: every source image's picture goes into it.
  const seriesInstanceUid = derivedSeriesUid({
    studyInstanceUid: source.studyInstanceUid,
    model: modelKey,
    kind,
    revision: request.revision,
  });
  const now = dicomMoment(request.createdAt);
  const method = describeMethod(explanation);
  const usageNotice = request.usageNotice ?? DEFAULT_USAGE_NOTICE;

  const pixelBytes = image.rows * image.columns * 3;
  // OB values have even length: pad the last byte.
  const pixels = new Uint8Array(pixelBytes + (pixelBytes % 2));
  pixels.set(image.data.subarray(0, pixelBytes));

  const dataset: NaturalDataset = {
    ImageType: ['DERIVED', 'SECONDARY'],
    InstanceCreationDate: now.date,
    InstanceCreationTime: now.time,
    SOPClassUID: sopClassUid,
    SOPInstanceUID: sopInstanceUid,
    ...source.patientStudy,
    SeriesDate: now.date,
    SeriesTime: now.time,
    ContentDate: now.date,
    ContentTime: now.time,
    Modality: 'OT',
    ConversionType: 'WSD',
    // General Equipment: the algorithm that made the picture.
    Manufacturer: model.manufacturer,
    ManufacturerModelName: model.name,
    SoftwareVersions: [model.version, `cxr-gateway ${model.softwareVersions}`],
    SeriesDescription: seriesDescription({
      what: 'AI heatmap (LRP)',
      usageNotice,
      supersedesRevision: request.supersedesRevision,
    }),
    DerivationDescription: truncate(
      `${method} relevance map for '${explanation.targetClass}' from model ${model.name} ${model.version} (${model.modelUid}), ` +
        'red = evidence for, blue = against, blended over the windowed source image; result banner burned in',
      1024,
    ),
    SourceImageSequence: [
      {
        ReferencedSOPClassUID: source.sopClassUid,
        ReferencedSOPInstanceUID: source.sopInstanceUid,
        PurposeOfReferenceCodeSequence: [SOURCE_PURPOSE],
      },
    ],
    ContributingEquipmentSequence: [
      {
        PurposeOfReferenceCodeSequence: [PROCESSING_ALGORITHM],
        Manufacturer: model.manufacturer,
        ManufacturerModelName: model.name,
        SoftwareVersions: [model.version],
        DeviceUID: model.modelUid,
        ContributionDateTime: now.dateTime,
        ContributionDescription: truncate(
          `Classification and ${method} relevance map for '${explanation.targetClass}'`,
          1024,
        ),
      },
    ],
    ...(source.bodyPartExamined === undefined ? {} : { BodyPartExamined: source.bodyPartExamined }),
    SecondaryCaptureDeviceManufacturer: model.manufacturer,
    SecondaryCaptureDeviceManufacturerModelName: 'cxr-gateway',
    SecondaryCaptureDeviceSoftwareVersions: [model.softwareVersions],
    DateOfSecondaryCapture: now.date,
    TimeOfSecondaryCapture: now.time,
    SeriesInstanceUID: seriesInstanceUid,
    SeriesNumber: request.seriesNumber ?? outputSeriesNumber('heatmap', request.revision),
    InstanceNumber: request.instanceNumber ?? source.instanceNumber ?? 1,
    // The picture keeps the source's orientation: it is the source image, scaled, with a strip added.
    PatientOrientation: source.patientOrientation.length === 2 ? source.patientOrientation : '',
    // Laterality is Type 2C: required (possibly empty) only for paired body parts and to be absent otherwise, so it
    // is copied when the source states one and left out when it does not (a chest is unpaired).
    ...(source.laterality === '' ? {} : { Laterality: source.laterality }),
    SamplesPerPixel: 3,
    PhotometricInterpretation: 'RGB',
    PlanarConfiguration: 0,
    ...(sopClass === 'multiframe-true-color' ? { NumberOfFrames: 1 } : {}),
    Rows: image.rows,
    Columns: image.columns,
    BitsAllocated: 8,
    BitsStored: 8,
    HighBit: 7,
    PixelRepresentation: 0,
    BurnedInAnnotation: 'YES',
    // Once lossy, always lossy (PS3.3 C.7.6.1.1.5): our pixels are stored uncompressed, so the flag, ratios and
    // methods are the source's.
    ...lossyAttributes(source),
    PixelData: [pixels.buffer],
    _vrMap: { PixelData: 'OB' },
  };
  // dcmjs writes text as UTF-8: declare it when anything copied from the source needs it.
  if (!isAscii(dataset)) dataset.SpecificCharacterSet = 'ISO_IR 192';
  return { bytes: writePart10(dataset, 'OB'), sopClassUid, sopInstanceUid, seriesInstanceUid };
}

function lossyAttributes(source: SourceInstance): NaturalDataset {
  const { lossy, ratios, methods } = source.lossyCompression;
  if (!lossy) return { LossyImageCompression: '00' };
  return {
    LossyImageCompression: '01',
    ...(ratios.length === 0 ? {} : { LossyImageCompressionRatio: ratios }),
    ...(methods.length === 0 ? {} : { LossyImageCompressionMethod: methods }),
  };
}

function checkImage(image: RgbImage): void {
  if (
    !Number.isInteger(image.rows) ||
    !Number.isInteger(image.columns) ||
    image.rows < 1 ||
    image.columns < 1 ||
    image.rows > 65535 ||
    image.columns > 65535
  ) {
    throw new GatewayError(
      'SC_IMAGE_INVALID',
      `a Secondary Capture needs 1..65535 rows and columns, got ${image.rows} x ${image.columns}`,
    );
  }
  if (image.data.length < image.rows * image.columns * 3) {
    throw new GatewayError(
      'SC_IMAGE_INVALID',
      `the heatmap has ${image.data.length} bytes, fewer than ${image.rows} x ${image.columns} x 3`,
    );
  }
}

function truncate(s: string, max: number): string {
  return s.length <= max ? s : s.slice(0, max);
}
