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
import { downscaleRgb } from './rgb-downscale.js';
import { encodeScPixels, type EncodedScPixels } from './sc-encoding.js';
import type { ScEncodingOptions } from './sc-encoding-types.js';

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
  /**
   * Transfer syntax and size cap of the pixels; default explicit-le, no cap. The WASM encodings need
   * prepareScEncoding() (sc-encoding.ts) to have completed.
   */
  encoding?: ScEncodingOptions;
}

/** A DICOM object we made, ready for a destination to send or store. */
export interface DerivedObject {
  /** Part 10 file bytes (Explicit VR Little Endian, or the SC's configured encoding). */
  bytes: Buffer;
  sopClassUid: string;
  sopInstanceUid: string;
  seriesInstanceUid: string;
  /** Set when the picture was scaled down to fit the size cap (ScEncodingOptions.maxBytes). */
  downscaled?: ScDownscale;
}

export interface ScDownscale {
  from: { rows: number; columns: number };
  to: { rows: number; columns: number };
  maxBytes: number;
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

  const encoding: ScEncodingOptions = request.encoding ?? { encoding: 'explicit-le' };
  const derivation =
    `${method} relevance map for '${explanation.targetClass}' from model ${model.name} ${model.version} (${model.modelUid}), ` +
    'red = evidence for, blue = against, blended over the windowed source image; result banner burned in';

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
    DerivationDescription: truncate(derivation, 1024),
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
    PlanarConfiguration: 0,
    ...(sopClass === 'multiframe-true-color' ? { NumberOfFrames: 1 } : {}),
    BitsAllocated: 8,
    BitsStored: 8,
    HighBit: 7,
    PixelRepresentation: 0,
    BurnedInAnnotation: 'YES',
  };
  // dcmjs writes text as UTF-8: declare it when anything copied from the source needs it.
  if (!isAscii(dataset)) dataset.SpecificCharacterSet = 'ISO_IR 192';
  const write = (picture: RgbImage, note: string): Buffer => {
    const pixels = encodeScPixels(picture, encoding);
    return writePart10(
      {
        ...dataset,
        ...(note === '' ? {} : { DerivationDescription: truncate(`${derivation}${note}`, 1024) }),
        PhotometricInterpretation: pixels.photometric,
        Rows: picture.rows,
        Columns: picture.columns,
        ...lossyAttributes(source, pixels),
        PixelData: pixels.pixelData,
        _vrMap: { PixelData: 'OB' },
      },
      'OB',
      pixels.transferSyntaxUid,
    );
  };
  const ids = { sopClassUid, sopInstanceUid, seriesInstanceUid };
  const bytes = write(image, '');
  const maxBytes = encoding.maxBytes;
  if (maxBytes === undefined || bytes.length <= maxBytes) return { bytes, ...ids };
  return { ...fitToSizeCap(image, bytes.length, maxBytes, write), ...ids };
}

/** Smallest picture edge the size cap may scale down to: below it the heatmap and its banner are unreadable. */
export const SC_MIN_EDGE = 128;
/** Tries at most this many sizes: each aims below the cap from the last size's measured bytes, so few are needed. */
const SIZE_CAP_TRIES = 8;

/**
 * Scales the picture down (aspect kept) until its object fits `maxBytes`, and says so in DerivationDescription.
 * Encoded size grows roughly with the pixel count, so each try scales by the square root of how far off it was.
 */
function fitToSizeCap(
  image: RgbImage,
  firstBytes: number,
  maxBytes: number,
  write: (picture: RgbImage, note: string) => Buffer,
): { bytes: Buffer; downscaled: ScDownscale } {
  let bytes = firstBytes;
  let factor = 1;
  for (let i = 0; i < SIZE_CAP_TRIES; i++) {
    factor *= Math.min(0.95, Math.sqrt(maxBytes / bytes) * 0.97);
    const picture = downscaleRgb(image, factor);
    if (Math.min(picture.rows, picture.columns) < Math.min(SC_MIN_EDGE, image.rows, image.columns)) break;
    const note =
      `; picture scaled down from ${image.columns} x ${image.rows} to ${picture.columns} x ${picture.rows} ` +
      `to fit the ${maxBytes}-byte size cap`;
    const written = write(picture, note);
    if (written.length <= maxBytes) {
      return {
        bytes: written,
        downscaled: {
          from: { rows: image.rows, columns: image.columns },
          to: { rows: picture.rows, columns: picture.columns },
          maxBytes,
        },
      };
    }
    bytes = written.length;
  }
  throw new GatewayError(
    'SC_SIZE_CAP_UNREACHABLE',
    `the ${image.columns} x ${image.rows} heatmap does not fit ${maxBytes} bytes even scaled down to a ` +
      `${SC_MIN_EDGE}-pixel edge; raise secondaryCapture.maxBytes`,
  );
}

/**
 * Once lossy, always lossy (PS3.3 C.7.6.1.1.5): the source's flag, ratios and methods, in order, with our own
 * compression's ratio and method appended when the SC's encoding is lossy itself.
 */
function lossyAttributes(source: SourceInstance, pixels: EncodedScPixels): NaturalDataset {
  const ratios: Array<number | string> = [...source.lossyCompression.ratios];
  const methods = [...source.lossyCompression.methods];
  if (pixels.lossyRatio !== undefined) {
    // DS holds at most 16 characters; two decimals say enough of a ratio.
    ratios.push(pixels.lossyRatio.toFixed(2));
    methods.push('ISO_10918_1');
  }
  if (!source.lossyCompression.lossy && pixels.lossyRatio === undefined) return { LossyImageCompression: '00' };
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
