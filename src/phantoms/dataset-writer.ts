/**
 * Writes a phantom dataset folder: synthetic chest X-rays with known ground truth, as DICOM.
 *
 * Layout of DIR (every path in labels.csv is relative to DIR, with '/' separators):
 *
 *   DIR/labels.csv                      one row per image, in index order (format below)
 *   DIR/images/phantom-NNNN.dcm         DX "for presentation" Part 10 file (valid for dciodvfy), one per image;
 *                                       NNNN = index + 1, zero-padded to at least 4 digits
 *   DIR/masks/phantom-NNNN.mask.png     ground truth of the finding: 8-bit greyscale PNG at the image's own
 *                                       rows x columns, 255 inside the finding (where it reaches 30% of its peak,
 *                                       within the visible lung fields), 0 elsewhere (all 0 when normal)
 *   DIR/previews/phantom-NNNN.png       (with previews) the image as a viewer shows it, 8-bit greyscale
 *
 * labels.csv: RFC 4180 (comma-separated, a header row, "-quoted cells where needed, \n line ends), columns:
 *   file             images/phantom-NNNN.dcm
 *   class            normal | pneumonia | covid (non-chest images are always normal: they carry no finding)
 *   view             PA | AP | LL (the file's ViewPosition)
 *   bodyPart         CHEST | HAND | SKULL (the file's BodyPartExamined)
 *   sopInstanceUid   the file's SOP Instance UID
 *   studyInstanceUid the file's Study Instance UID (images of one study share it)
 *   mask             masks/phantom-NNNN.mask.png
 *   seed             the image's own seed (PhantomSpec.seed)
 *   textMarkers      burned-in texts, '|'-separated, empty when none ("L|PORTABLE")
 *   index            position in the dataset from 0: phantomSpecFor(index, datasetSeed, options) gives the spec
 *   datasetSeed      the --seed of the dataset
 *   patientId        the file's PatientID (one patient per study: use it to keep a patient on one side of a split)
 *   photometric      MONOCHROME1 | MONOCHROME2
 *   bitsStored       the file's Bits Stored (16 for 13..15-bit pixels in JPEG lossless: see frame-encoder.ts)
 *   rows, columns    image size
 *   transferSyntax   the file's Transfer Syntax UID
 *   finding          what was planted: "" | "consolidation RLL" | "ground-glass right:3 left:2"
 *
 * The same seed and options give the same folder byte for byte: UIDs, dates and names come from the seed only.
 */

import { mkdir, readdir, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { GatewayError, describeError } from '../errors.js';
import type { FindingSummary } from './findings.js';
import {
  declaredBitsStored,
  initFrameEncoders,
  isEncapsulated,
  PHANTOM_SYNTAXES,
  type PhantomSyntax,
} from './frame-encoder.js';
import { phantomIdentity, phantomPart10 } from './phantom-dicom.js';
import { phantomSpecFor, resolveSetOptions, type PhantomClass, type PhantomSetOptions } from './phantom-spec.js';
import { encodeGreyPng } from '../reporting/png-encoder.js';
import { previewPng } from './preview.js';
import { renderPhantom } from './render-phantom.js';

/** The syntaxes 'mixed' cycles through, image by image. */
const MIXED: readonly PhantomSyntax[] = [
  'explicit',
  'jpeg-lossless',
  'jpeg-ls-lossless',
  'jpeg2000-lossless',
  'rle',
  'implicit',
];

export interface PhantomDatasetOptions extends PhantomSetOptions {
  dir: string;
  count: number;
  seed: number;
  /** Default 'explicit'; 'mixed' cycles through every lossless syntax. */
  syntax?: PhantomSyntax | 'mixed';
  /** Also write previews/phantom-NNNN.png. Default false. */
  previews?: boolean;
  /** Called after each image (for progress output). */
  onImage?: (done: number, total: number) => void;
}

export interface PhantomDatasetSummary {
  dir: string;
  labelsFile: string;
  count: number;
  studies: number;
  byClass: Record<PhantomClass, number>;
  byView: Record<string, number>;
  byBodyPart: Record<string, number>;
  seconds: number;
}

export const LABEL_COLUMNS = [
  'file',
  'class',
  'view',
  'bodyPart',
  'sopInstanceUid',
  'studyInstanceUid',
  'mask',
  'seed',
  'textMarkers',
  'index',
  'datasetSeed',
  'patientId',
  'photometric',
  'bitsStored',
  'rows',
  'columns',
  'transferSyntax',
  'finding',
] as const;

export const MAX_COUNT = 100_000;

function csvCell(value: string | number): string {
  const s = String(value);
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

function describeFindings(findings: readonly FindingSummary[]): string {
  if (findings.length === 0) return '';
  if (findings.every((f) => f.kind === 'consolidation'))
    return findings.map((f) => `consolidation ${f.lobe ?? f.lung}`).join(' ');
  return `ground-glass ${findings.map((f) => `${f.lung}:${f.count}`).join(' ')}`;
}

async function prepareDir(dir: string): Promise<void> {
  try {
    await mkdir(dir, { recursive: true });
    const entries = await readdir(dir);
    if (entries.length > 0) {
      throw new GatewayError(
        'PHANTOMS_OUT_NOT_EMPTY',
        `${dir} is not empty; give --out a new or empty folder (phantoms never overwrite files)`,
      );
    }
    for (const sub of ['images', 'masks']) await mkdir(path.join(dir, sub));
  } catch (error) {
    if (error instanceof GatewayError) throw error;
    throw new GatewayError(
      'PHANTOMS_OUT_UNWRITABLE',
      `cannot create the output folder ${dir}: ${describeError(error)}`,
      { cause: error },
    );
  }
}

/** Renders and writes `count` phantoms into `dir` (which must be new or empty). */
export async function writePhantomDataset(options: PhantomDatasetOptions): Promise<PhantomDatasetSummary> {
  const started = performance.now();
  const { dir, count, seed } = options;
  if (!Number.isInteger(count) || count < 1 || count > MAX_COUNT) {
    throw new GatewayError(
      'PHANTOMS_OPTIONS',
      `the number of images must be an integer from 1 to ${MAX_COUNT}, got ${count}`,
    );
  }
  const setOptions = resolveSetOptions(options);
  const syntaxChoice = options.syntax ?? 'explicit';
  if (syntaxChoice !== 'mixed' && !Object.hasOwn(PHANTOM_SYNTAXES, syntaxChoice)) {
    throw new GatewayError(
      'PHANTOMS_OPTIONS',
      `unknown syntax '${String(syntaxChoice)}': use ${[...Object.keys(PHANTOM_SYNTAXES), 'mixed'].join(', ')}`,
    );
  }
  // Checks the seed before anything is created on disk.
  phantomSpecFor(0, seed, setOptions);
  const syntaxOf = (index: number): PhantomSyntax =>
    syntaxChoice === 'mixed' ? (MIXED[index % MIXED.length] ?? 'explicit') : syntaxChoice;
  if (syntaxChoice === 'mixed' || isEncapsulated(syntaxChoice)) await initFrameEncoders();
  await prepareDir(dir);
  if (options.previews) await mkdir(path.join(dir, 'previews'));

  const width = Math.max(4, String(count).length);
  const rows: string[] = [LABEL_COLUMNS.join(',')];
  const byClass: Record<PhantomClass, number> = { normal: 0, pneumonia: 0, covid: 0 };
  const byView: Record<string, number> = {};
  const byBodyPart: Record<string, number> = {};
  const studies = new Set<number>();
  for (let index = 0; index < count; index++) {
    const spec = phantomSpecFor(index, seed, setOptions);
    const image = renderPhantom(spec);
    const id = phantomIdentity(spec, seed);
    const syntax = syntaxOf(index);
    const name = `phantom-${String(index + 1).padStart(width, '0')}`;
    const file = `images/${name}.dcm`;
    const mask = `masks/${name}.mask.png`;
    const maskBytes = new Uint8Array(image.mask.length);
    for (let i = 0; i < maskBytes.length; i++) maskBytes[i] = image.mask[i] ? 255 : 0;
    const dicom = phantomPart10(image, id, syntax);
    await writeFile(path.join(dir, file), dicom);
    await writeFile(path.join(dir, mask), encodeGreyPng(maskBytes, image.columns, image.rows));
    if (options.previews) await writeFile(path.join(dir, 'previews', `${name}.png`), previewPng(image));
    rows.push(
      [
        file,
        image.className,
        image.view,
        image.bodyPart,
        id.sopInstanceUid,
        id.studyInstanceUid,
        mask,
        spec.seed,
        image.textMarkers.join('|'),
        index,
        seed,
        id.patientId,
        image.photometric,
        declaredBitsStored(syntax, image.bitsStored),
        image.rows,
        image.columns,
        PHANTOM_SYNTAXES[syntax],
        describeFindings(image.findings),
      ]
        .map(csvCell)
        .join(','),
    );
    byClass[image.className]++;
    byView[image.view] = (byView[image.view] ?? 0) + 1;
    byBodyPart[image.bodyPart] = (byBodyPart[image.bodyPart] ?? 0) + 1;
    studies.add(spec.studyIndex);
    options.onImage?.(index + 1, count);
  }
  // labels.csv last, via a rename: a folder with a labels file is a complete dataset.
  const labelsFile = path.join(dir, 'labels.csv');
  await writeFile(`${labelsFile}.partial`, `${rows.join('\n')}\n`);
  await rename(`${labelsFile}.partial`, labelsFile);
  return {
    dir,
    labelsFile,
    count,
    studies: studies.size,
    byClass,
    byView,
    byBodyPart,
    seconds: (performance.now() - started) / 1000,
  };
}
