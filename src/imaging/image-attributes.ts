// The Image Pixel, Modality LUT and VOI LUT attributes readImage() needs, validated into the small set of layouts
// the classifier can use. Every rejection says what the file holds and what to do about it.

import type { DicomJson } from 'dcmjs';
import type { ModalityTransform, Photometric, VoiLut, VoiWindow } from './decoded-image.js';
import { firstNumber, firstString, has, numbers, sequenceItems } from './dicom-values.js';
import { readLut } from './lut.js';
import { PixelDecodeError } from './pixel-errors.js';

/** Largest edge accepted (the biggest detectors are about 4300 px; 16384 leaves room for stitched images). */
export const MAX_EDGE = 16384;
/** Largest pixel count accepted: bounds the memory one image can take (about 0.5 GB of Float32 at the limit). */
export const MAX_PIXELS = 100_000_000;

export interface PixelModule {
  rows: number;
  columns: number;
  photometric: Photometric;
  bitsAllocated: 8 | 16 | 32;
  bitsStored: number;
  highBit: number;
  pixelRepresentation: 0 | 1;
  numberOfFrames: number;
}

const TAG = {
  samplesPerPixel: '00280002',
  photometric: '00280004',
  numberOfFrames: '00280008',
  rows: '00280010',
  columns: '00280011',
  bitsAllocated: '00280100',
  bitsStored: '00280101',
  highBit: '00280102',
  pixelRepresentation: '00280103',
  pixelPaddingValue: '00280120',
  pixelPaddingRangeLimit: '00280121',
  windowCenter: '00281050',
  windowWidth: '00281051',
  rescaleIntercept: '00281052',
  rescaleSlope: '00281053',
  voiLutFunction: '00281056',
  modalityLutSequence: '00283000',
  voiLutSequence: '00283010',
  lossyImageCompression: '00282110',
} as const;

function layout(message: string): PixelDecodeError {
  return new PixelDecodeError('PIXELS_UNSUPPORTED_LAYOUT', message);
}

export function readPixelModule(ds: DicomJson): PixelModule {
  const rows = firstNumber(ds, TAG.rows);
  const columns = firstNumber(ds, TAG.columns);
  if (rows === undefined || columns === undefined) {
    throw new PixelDecodeError(
      'PIXELS_DIMENSIONS',
      `the image has no ${rows === undefined ? 'Rows (0028,0010)' : 'Columns (0028,0011)'}; the file is not a valid image, ask the sender to fix its export`,
    );
  }
  for (const [name, v] of [
    ['Rows', rows],
    ['Columns', columns],
  ] as const) {
    if (!Number.isInteger(v) || v < 1 || v > MAX_EDGE) {
      throw new PixelDecodeError(
        'PIXELS_DIMENSIONS',
        `${name} is ${v}; images must be 1..${MAX_EDGE} pixels on each edge to be classified` +
          (v < 1
            ? ' (an empty image: the sender exported no pixels)'
            : ' (a stitched or damaged image; send the single radiograph)'),
      );
    }
  }
  if (rows * columns > MAX_PIXELS) {
    throw new PixelDecodeError(
      'PIXELS_DIMENSIONS',
      `the image is ${rows} x ${columns} = ${rows * columns} pixels, above the ${MAX_PIXELS} limit for one radiograph; send the single radiograph, not a stitched or oversampled export`,
    );
  }

  const samples = firstNumber(ds, TAG.samplesPerPixel) ?? 1;
  const photometric = firstString(ds, TAG.photometric);
  if (samples !== 1 || (photometric !== 'MONOCHROME1' && photometric !== 'MONOCHROME2')) {
    throw layout(
      `the image is ${photometric ?? 'without a Photometric Interpretation'} with ${samples} sample(s) per pixel; the model ` +
        'reads grey radiographs only (MONOCHROME1 or MONOCHROME2, 1 sample): send the original radiograph, not a ' +
        'screenshot, secondary capture or colour rendering',
    );
  }

  const bitsAllocated = firstNumber(ds, TAG.bitsAllocated);
  if (bitsAllocated === 1) {
    throw layout(
      'Bits Allocated is 1: a bitmap (segmentation or overlay style) image, not a radiograph the model can read',
    );
  }
  if (bitsAllocated !== 8 && bitsAllocated !== 16 && bitsAllocated !== 32) {
    throw layout(
      `Bits Allocated is ${bitsAllocated ?? 'missing'}; grey radiographs use 8, 16 (or 32) bits per pixel: the file is malformed, ask the sender to fix its export`,
    );
  }
  const bitsStored = firstNumber(ds, TAG.bitsStored) ?? bitsAllocated;
  if (!Number.isInteger(bitsStored) || bitsStored < 1 || bitsStored > bitsAllocated) {
    throw layout(
      `Bits Stored is ${bitsStored} with Bits Allocated ${bitsAllocated}; it must be 1..${bitsAllocated}: the file is malformed`,
    );
  }
  const highBit = firstNumber(ds, TAG.highBit) ?? bitsStored - 1;
  if (!Number.isInteger(highBit) || highBit < bitsStored - 1 || highBit >= bitsAllocated) {
    throw layout(
      `High Bit is ${highBit} with Bits Stored ${bitsStored} and Bits Allocated ${bitsAllocated}; the file is malformed`,
    );
  }
  const pixelRepresentation = firstNumber(ds, TAG.pixelRepresentation) ?? 0;
  if (pixelRepresentation !== 0 && pixelRepresentation !== 1) {
    throw layout(
      `Pixel Representation is ${pixelRepresentation}; it must be 0 (unsigned) or 1 (signed): the file is malformed`,
    );
  }
  const frames = firstNumber(ds, TAG.numberOfFrames) ?? 1;
  return {
    rows,
    columns,
    photometric,
    bitsAllocated,
    bitsStored,
    highBit,
    pixelRepresentation,
    numberOfFrames: Number.isInteger(frames) && frames >= 1 ? frames : 1,
  };
}

/** Rescale Slope/Intercept, or the Modality LUT Sequence where the file has one instead. */
export function readModalityTransform(ds: DicomJson, pm: PixelModule): ModalityTransform {
  const [item] = sequenceItems(ds, TAG.modalityLutSequence);
  if (item) {
    const lut = readLut(item, pm.pixelRepresentation === 1);
    if (typeof lut === 'string') {
      throw new PixelDecodeError(
        'PIXELS_CORRUPT',
        `the Modality LUT Sequence is malformed (${lut}), so pixel values cannot be interpreted; ask the sender to fix its export`,
      );
    }
    return { kind: 'lut', lut };
  }
  const slope = firstNumber(ds, TAG.rescaleSlope) ?? 1;
  const intercept = firstNumber(ds, TAG.rescaleIntercept) ?? 0;
  // A zero slope would flatten the image to one value; writers that emit it mean "no rescale".
  return { kind: 'rescale', slope: slope === 0 ? 1 : slope, intercept };
}

/** Whether modality values can be negative (decides how "US or SS" LUT descriptors are read). */
export function modalityCanBeNegative(pm: PixelModule, transform: ModalityTransform): boolean {
  if (transform.kind === 'lut') return false;
  return pm.pixelRepresentation === 1 || transform.intercept < 0 || transform.slope < 0;
}

/**
 * The file's VOI: the first VOI LUT item, else the first Window Center/Width pair. A malformed VOI LUT or a
 * non-positive width is skipped (the VOI is a display hint; the percentile window is a safe fallback).
 */
export function readVoi(ds: DicomJson, signedInput: boolean): VoiWindow | VoiLut | undefined {
  const [item] = sequenceItems(ds, TAG.voiLutSequence);
  if (item) {
    const lut = readLut(item, signedInput);
    if (typeof lut !== 'string') return { kind: 'lut', lut };
  }
  const center = numbers(ds, TAG.windowCenter)[0];
  const width = numbers(ds, TAG.windowWidth)[0];
  if (center === undefined || width === undefined) return undefined;
  const fnName = firstString(ds, TAG.voiLutFunction)?.toUpperCase() ?? 'LINEAR';
  const fn = fnName === 'LINEAR_EXACT' || fnName === 'SIGMOID' ? fnName : 'LINEAR';
  // PS3.3 C.11.2.1.2: LINEAR needs width >= 1, the others width > 0.
  if (fn === 'LINEAR' ? width < 1 : width <= 0) return undefined;
  return { kind: 'window', center, width, fn };
}

/**
 * Pixel Padding Value and Pixel Padding Range Limit (the limit defaults to the value) as read: "US or SS" values
 * come back signed or unsigned depending on the VR the writer used, so the caller brings them into the stored-value
 * domain with the same masking and sign rule as the pixels.
 */
export function readPadding(ds: DicomJson): [value: number, limit: number] | undefined {
  const value = numbers(ds, TAG.pixelPaddingValue, 'uint16')[0];
  if (value === undefined) return undefined;
  return [value, numbers(ds, TAG.pixelPaddingRangeLimit, 'uint16')[0] ?? value];
}

export function declaresLossyCompression(ds: DicomJson): boolean {
  return firstString(ds, TAG.lossyImageCompression) === '01';
}

export function hasPixelData(ds: DicomJson): boolean {
  return has(ds, '7FE00010');
}
