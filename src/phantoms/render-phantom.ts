// One phantom from its spec: anatomy (by body part and view) -> findings of its class -> exposure with noise ->
// burned-in text -> stored values. No DICOM here: training and tests call this directly.

import type { AnatomyRender } from './anatomy.js';
import { renderFrontalChest } from './chest-frontal.js';
import { renderLateralChest } from './chest-lateral.js';
import {
  drawCollimation,
  drawExposure,
  expose,
  toStored,
  whiteLevel,
  type Box,
  type Photometric,
  type VoiWindowValues,
} from './exposure.js';
import { renderFindings, type FindingSummary } from './findings.js';
import { renderHand } from './hand.js';
import type { PhantomBodyPart, PhantomClass, PhantomSpec, PhantomView } from './phantom-spec.js';
import { createRandom } from './random.js';
import { renderSkull } from './skull.js';
import { burnTextMarkers } from './text-markers.js';

export interface PhantomImage {
  spec: PhantomSpec;
  className: PhantomClass;
  view: PhantomView;
  bodyPart: PhantomBodyPart;
  rows: number;
  columns: number;
  bitsStored: number;
  photometric: Photometric;
  /** Stored values, row-major, one per pixel (unsigned, < 2^bitsStored). */
  pixels: Uint16Array;
  /** The VOI window in stored values (as written to Window Center / Width / VOI LUT Function). */
  window: VoiWindowValues;
  /** Ground truth of the finding: 1 inside, 0 elsewhere; all 0 for a normal image. */
  mask: Uint8Array;
  /** Lung fields: 0 none, 1 patient's right, 2 patient's left, 3 both superimposed (lateral). */
  lungs: Uint8Array;
  /** 1 where burned-in text covers at least half a pixel. */
  textMask: Uint8Array;
  textMarkers: string[];
  findings: FindingSummary[];
  patientSex: 'M' | 'F';
  /** Image Laterality: L/R for a hand, U for unpaired (chest, skull). */
  laterality: 'L' | 'R' | 'U';
  kvp: number;
  mas: number;
}

function renderAnatomy(spec: PhantomSpec): AnatomyRender & { laterality: 'L' | 'R' | 'U' } {
  const base = { rows: spec.rows, columns: spec.columns, patientSeed: spec.patientSeed, seed: spec.seed };
  switch (spec.bodyPart) {
    case 'HAND':
      return renderHand(base);
    case 'SKULL':
      return { ...renderSkull(base), laterality: 'U' };
    case 'CHEST':
      if (spec.view === 'LL') return { ...renderLateralChest(base), laterality: 'U' };
      return { ...renderFrontalChest({ ...base, view: spec.view === 'AP' ? 'AP' : 'PA' }), laterality: 'U' };
  }
}

function lungBox(lungs: Uint8Array, columns: number): Box | undefined {
  let x0 = Infinity;
  let y0 = Infinity;
  let x1 = -Infinity;
  let y1 = -Infinity;
  for (let i = 0; i < lungs.length; i++) {
    if (lungs[i] === 0) continue;
    const x = i % columns;
    const y = (i - x) / columns;
    if (x < x0) x0 = x;
    if (x > x1) x1 = x;
    if (y < y0) y0 = y;
    if (y > y1) y1 = y;
  }
  return Number.isFinite(x0) ? { x0, y0, x1, y1 } : undefined;
}

/** Renders the phantom a spec describes. Pure: the same spec gives the same pixels. */
export function renderPhantom(spec: PhantomSpec): PhantomImage {
  const anatomy = renderAnatomy(spec);
  const findings = renderFindings(spec.bodyPart === 'CHEST' ? spec.className : 'normal', anatomy, spec.patientSeed);
  const density = anatomy.density;
  for (let i = 0; i < density.data.length; i++)
    density.data[i] = (density.data[i] ?? 0) + (findings.density.data[i] ?? 0);

  const exposureRandom = createRandom(spec.seed, 'exposure');
  const exposure = drawExposure(
    exposureRandom,
    spec.bitsStored,
    spec.photometric,
    spec.rows,
    spec.columns,
    spec.view === 'AP' && spec.bodyPart === 'CHEST',
  );
  const collimation = drawCollimation(exposureRandom, spec.rows, spec.columns, lungBox(anatomy.lungs, spec.columns));
  const display = expose(density, exposure, collimation, createRandom(spec.seed, 'noise'));

  const textMask = new Uint8Array(spec.rows * spec.columns);
  let textMarkers: string[] = [];
  if (spec.textMarkers) {
    const context = {
      view: spec.view,
      bodyPart: spec.bodyPart,
      ...(anatomy.laterality === 'U' ? {} : { laterality: anatomy.laterality }),
    };
    const burned = burnTextMarkers(
      spec.rows,
      spec.columns,
      anatomy.lungs,
      context,
      createRandom(spec.seed, 'markers'),
      collimation,
    );
    const white = whiteLevel(exposure);
    for (let i = 0; i < display.length; i++) {
      const a = burned.alpha[i] ?? 0;
      if (a <= 0) continue;
      display[i] = (display[i] ?? 0) * (1 - a) + white * a;
      if (a >= 0.5) textMask[i] = 1;
    }
    textMarkers = burned.markers;
  }

  return {
    spec,
    className: spec.bodyPart === 'CHEST' ? spec.className : 'normal',
    view: spec.view,
    bodyPart: spec.bodyPart,
    rows: spec.rows,
    columns: spec.columns,
    bitsStored: spec.bitsStored,
    photometric: spec.photometric,
    pixels: toStored(display, exposure),
    window: exposure.window,
    mask: findings.mask,
    lungs: anatomy.lungs,
    textMask,
    textMarkers,
    findings: findings.summaries,
    patientSex: anatomy.patientSex,
    laterality: anatomy.laterality,
    kvp: exposure.kvp,
    mas: exposure.mas,
  };
}
