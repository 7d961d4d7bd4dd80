// What a phantom is (class, view, body part, size, bit depth, photometric, markers, seeds), chosen per index from a
// dataset seed. The class comes from a shuffled balanced schedule, so any N images hold the classes within one of
// each other; everything else is drawn from the index's own stream, so image i is the same whatever N is.

import { GatewayError } from '../errors.js';
import type { Photometric } from './exposure.js';
import { createRandom, deriveSeed } from './random.js';

export const PHANTOM_CLASSES = ['normal', 'pneumonia', 'covid'] as const;
export type PhantomClass = (typeof PHANTOM_CLASSES)[number];
export type PhantomView = 'PA' | 'AP' | 'LL';
export type PhantomBodyPart = 'CHEST' | 'HAND' | 'SKULL';

export interface PhantomSpec {
  /** Position in the dataset, from 0. */
  index: number;
  /** This image's seed: pose, exposure, noise, markers. */
  seed: number;
  /** The patient's seed: anatomy and findings (shared by the images of one study). */
  patientSeed: number;
  /** Index of the study in the dataset, from 0. */
  studyIndex: number;
  /** Position of the image in its study, from 0. */
  indexInStudy: number;
  /** Ground truth. Non-chest images are always 'normal' (they carry no finding). */
  className: PhantomClass;
  bodyPart: PhantomBodyPart;
  view: PhantomView;
  rows: number;
  columns: number;
  /** 12..16. */
  bitsStored: number;
  photometric: Photometric;
  textMarkers: boolean;
}

export interface PhantomSetOptions {
  /** Default: all three. */
  classes?: readonly PhantomClass[];
  /** Rows (the longer side); default 256. */
  size?: number;
  /** 'square' (default): columns = rows; 'portrait': columns 80..100% of rows, like real detectors. */
  aspect?: 'square' | 'portrait';
  /** Fraction of images that are lateral chest views (ViewPosition LL); default 0. */
  lateralFraction?: number;
  /** Fraction of images that are not chests (HAND, SKULL); default 0. */
  nonChestFraction?: number;
  /** Fraction of frontal chest images taken AP (portable) rather than PA; default 0.3. */
  apFraction?: number;
  /** Burn in text markers; default false. */
  textMarkers?: boolean;
  /** Images per study (same patient); default 1. */
  imagesPerStudy?: number;
  /** Fraction of MONOCHROME1 images; default 0.25. */
  monochrome1Fraction?: number;
}

export const MIN_SIZE = 32;
export const MAX_SIZE = 4096;

function invalid(what: string): GatewayError {
  return new GatewayError('PHANTOMS_OPTIONS', what);
}

function fraction(name: string, value: number | undefined, fallback: number): number {
  const v = value ?? fallback;
  if (!Number.isFinite(v) || v < 0 || v > 1)
    throw invalid(`${name} must be a number from 0 to 1, got ${String(value)}`);
  return v;
}

/** Options with defaults applied, checked; a GatewayError names the first bad one. */
export function resolveSetOptions(options: PhantomSetOptions = {}): Required<PhantomSetOptions> {
  const classes = options.classes ?? PHANTOM_CLASSES;
  if (classes.length === 0) throw invalid('classes must name at least one of normal, pneumonia, covid');
  for (const c of classes)
    if (!PHANTOM_CLASSES.includes(c)) throw invalid(`unknown class '${String(c)}': use normal, pneumonia or covid`);
  const size = options.size ?? 256;
  if (!Number.isInteger(size) || size < MIN_SIZE || size > MAX_SIZE)
    throw invalid(`size must be an integer from ${MIN_SIZE} to ${MAX_SIZE}, got ${String(options.size)}`);
  const lateralFraction = fraction('lateral fraction', options.lateralFraction, 0);
  const nonChestFraction = fraction('non-chest fraction', options.nonChestFraction, 0);
  if (lateralFraction + nonChestFraction > 1) throw invalid('lateral fraction + non-chest fraction must not exceed 1');
  const imagesPerStudy = options.imagesPerStudy ?? 1;
  if (!Number.isInteger(imagesPerStudy) || imagesPerStudy < 1 || imagesPerStudy > 16)
    throw invalid(`images per study must be an integer from 1 to 16, got ${String(options.imagesPerStudy)}`);
  return {
    classes: [...new Set(classes)],
    size,
    aspect: options.aspect ?? 'square',
    lateralFraction,
    nonChestFraction,
    apFraction: fraction('AP fraction', options.apFraction, 0.3),
    textMarkers: options.textMarkers ?? false,
    imagesPerStudy,
    monochrome1Fraction: fraction('MONOCHROME1 fraction', options.monochrome1Fraction, 0.25),
  };
}

/** The class of a study: a shuffled, balanced schedule in blocks of one of each class. */
function studyClass(studyIndex: number, seed: number, classes: readonly PhantomClass[]): PhantomClass {
  const block = Math.floor(studyIndex / classes.length);
  const r = createRandom(seed, 'class-block', block);
  const order = classes.map((c) => ({ c, key: r.next() })).sort((a, b) => a.key - b.key);
  return order[studyIndex % classes.length]?.c ?? 'normal';
}

/** The phantom at `index` of the dataset with seed `seed`. */
export function phantomSpecFor(index: number, seed: number, options: PhantomSetOptions = {}): PhantomSpec {
  if (!Number.isInteger(index) || index < 0) throw invalid(`index must be a non-negative integer, got ${index}`);
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff)
    throw invalid(`seed must be an integer from 0 to 4294967295, got ${seed}`);
  const o = resolveSetOptions(options);
  const studyIndex = Math.floor(index / o.imagesPerStudy);
  // Every draw is made whatever the options, in a fixed order, so that changing one option (say, the AP fraction)
  // does not reshuffle the bit depths and photometrics of the other images.
  const r = createRandom(seed, 'spec', index);
  const kind = r.next();
  const handOrSkull = r.next();
  const apDraw = r.next();
  const aspectDraw = r.next();
  const bitsStored = r.int(12, 16);
  const photometricDraw = r.next();
  const bodyPart: PhantomBodyPart = kind < o.nonChestFraction ? (handOrSkull < 0.5 ? 'HAND' : 'SKULL') : 'CHEST';
  const lateral = bodyPart === 'CHEST' && kind < o.nonChestFraction + o.lateralFraction;
  const view: PhantomView =
    bodyPart === 'HAND' ? 'PA' : bodyPart === 'SKULL' ? 'AP' : lateral ? 'LL' : apDraw < o.apFraction ? 'AP' : 'PA';
  const rows = o.size;
  const columns =
    o.aspect === 'square' ? rows : Math.max(MIN_SIZE, 2 * Math.round((rows * (0.8 + 0.2 * aspectDraw)) / 2));
  return {
    index,
    seed: deriveSeed(seed, 'image', index),
    patientSeed: deriveSeed(seed, 'patient', studyIndex),
    studyIndex,
    indexInStudy: index - studyIndex * o.imagesPerStudy,
    className: bodyPart === 'CHEST' ? studyClass(studyIndex, seed, o.classes) : 'normal',
    bodyPart,
    view,
    rows,
    columns,
    bitsStored,
    photometric: photometricDraw < o.monochrome1Fraction ? 'MONOCHROME1' : 'MONOCHROME2',
    textMarkers: o.textMarkers,
  };
}
