// Shared inputs of the reporting specifications: a model description, a classification, and relevance maps with
// a known structure planted at a known place of the source image.

import dcmjs from 'dcmjs';
import type { NaturalDataset } from 'dcmjs';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { placement, type Placement, type ResizeMode } from '../../src/imaging/resize.js';
import type { ClassificationSummary, OutputModelInfo } from '../../src/reporting/report-inputs.js';
import { dciodvfy } from '../helpers/dicom-factory.js';

export const MODEL: OutputModelInfo = {
  name: 'densenet201-cxr',
  version: '1.2.0',
  modelUid: '2.25.311111111111111111111111111111111111',
  manufacturer: 'cxr-gateway',
  softwareVersions: '0.1.0',
};

export const CLASSIFICATION: ClassificationSummary = {
  classes: ['COVID-19', 'pneumonia', 'normal'],
  probabilities: [0.8712, 0.1011, 0.0277],
  predicted: 'COVID-19',
};

export const EXPLANATION = { targetClass: 'COVID-19', composite: 'isnet', parameters: 'epsilon 0.01, alpha 2, beta 1' };

export const CREATED_AT = new Date(2024, 4, 17, 9, 30, 15);

export const HEATMAP_MODEL = {
  name: MODEL.name,
  version: MODEL.version,
  intendedUse: 'Research use only: triage support for adult frontal chest radiographs.',
};

export interface PlantedBlob {
  /** Centre in source image pixels. */
  row: number;
  column: number;
  /** Standard deviation in source pixels. */
  sigma: number;
}

/**
 * A size x size relevance map for a rows x columns source placed by `mode`: a positive Gaussian (peak 1) at the
 * blob's place in the source, and `background` (negative) everywhere else the image occupies.
 */
export function plantedRelevance(
  rows: number,
  columns: number,
  size: number,
  mode: ResizeMode,
  blob: PlantedBlob,
  background = -0.25,
): { values: Float32Array; placement: Placement } {
  const p = placement(rows, columns, size, mode);
  const values = new Float32Array(size * size);
  const sy = p.rows / rows;
  const sx = p.columns / columns;
  const cy = p.top + (blob.row + 0.5) * sy - 0.5;
  const cx = p.left + (blob.column + 0.5) * sx - 0.5;
  const sigma = blob.sigma * Math.min(sx, sy);
  for (let y = p.top; y < p.top + p.rows; y++) {
    for (let x = p.left; x < p.left + p.columns; x++) {
      const g = Math.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * sigma * sigma));
      values[y * size + x] = g + background * (1 - g);
    }
  }
  return { values, placement: p };
}

/** Mean of (red - blue) over the pixels of a picture region where `inside(row, column)` holds. */
export function meanRedMinusBlue(
  rgb: Uint8Array,
  width: number,
  region: { top: number; left: number; rows: number; columns: number },
  inside: (row: number, column: number) => boolean,
): { mean: number; count: number } {
  let sum = 0;
  let count = 0;
  for (let y = 0; y < region.rows; y++) {
    for (let x = 0; x < region.columns; x++) {
      if (!inside(y, x)) continue;
      const o = ((region.top + y) * width + region.left + x) * 3;
      sum += (rgb[o] ?? 0) - (rgb[o + 2] ?? 0);
      count++;
    }
  }
  return { mean: count === 0 ? 0 : sum / count, count };
}

/** Reads a Part 10 object back with dcmjs, as natural attributes. */
export function readBack(bytes: Uint8Array): NaturalDataset {
  const dict = dcmjs.data.DicomMessage.readFile(new Uint8Array(bytes).buffer);
  return dcmjs.data.DicomMetaDictionary.naturalizeDataset(dict.dict);
}

/** Writes the bytes to a temporary file and runs dciodvfy on it. */
export async function validate(
  bytes: Uint8Array,
  name = 'object.dcm',
): Promise<{ errors: string[]; warnings: string[]; output: string; file: string }> {
  const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'reporting-')), name);
  writeFileSync(file, bytes);
  return { ...(await dciodvfy(file)), file };
}
