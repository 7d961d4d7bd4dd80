// Class-specific findings, with their ground truth:
//  - pneumonia-like: lobar consolidation, one soft-edged dense region in ONE lobe of one lung, cut sharply where the
//    lobe ends (fissure, diaphragm, heart border): most of the air in it is replaced, vessels vanish in it;
//  - COVID-19-like: bilateral, peripheral, patchy ground-glass opacities, several hazy blobs along the outer lung
//    edges of both lungs, more often in the lower zones: half to most of the air is replaced, patchily, so vessels
//    stay visible through them.
// A finding fills a fraction of the airspaces: it adds back that fraction of the anatomy's aeration (the density the
// air took away), so it is as dense as the lung it sits in is lucent, like real airspace disease. Findings are drawn
// from their own random stream, so a phantom rendered as 'normal' is the same patient, pose and noise without the
// finding. Sizes are relative to the lung width, so the same finding shows at every image size (and survives
// downsampling to 128 x 128).

import type { AnatomyRender, Lobe, LungShape } from './anatomy.js';
import { addEllipse, createField, Profile, valueNoise, type Field } from './raster.js';
import { createRandom, type Random } from './random.js';

export type FindingClass = 'normal' | 'pneumonia' | 'covid';

export interface FindingSummary {
  kind: 'consolidation' | 'ground-glass';
  /** 'right' / 'left' (frontal views), 'superimposed' (lateral). */
  lung: 'right' | 'left' | 'superimposed';
  /** The lobe of a consolidation. */
  lobe?: string;
  /** Number of opacities. */
  count: number;
}

export interface Findings {
  /** Density added to the anatomy (exactly 0 outside the findings' support). */
  density: Field;
  /** 1 where a finding is (its profile at least MASK_LEVEL of its peak, inside the lung), else 0. */
  mask: Uint8Array;
  summaries: FindingSummary[];
}

/** A finding's mask is where its profile reaches this fraction of the finding's own peak. */
export const MASK_LEVEL = 0.3;

const LUNG_NAME = { 1: 'right', 2: 'left', 3: 'superimposed' } as const;

interface Blob {
  x: number;
  y: number;
  rx: number;
  ry: number;
  angle: number;
  /** Fraction of the airspaces filled at the blob's centre. */
  fill: number;
}

/** Fluid is slightly denser than the soft tissue the aeration is measured against. */
const FLUID_EXCESS = 0.03;

/** Filled fraction + normalised envelope (each blob's profile over its own peak) of a set of blobs. */
interface Drawn {
  fill: Field;
  envelope: Field;
  box: { x0: number; y0: number; x1: number; y1: number };
}

function drawBlobs(width: number, height: number, blobs: readonly Blob[]): Drawn {
  const fill = createField(width, height);
  const envelope = createField(width, height);
  let x0 = width;
  let y0 = height;
  let x1 = 0;
  let y1 = 0;
  for (const b of blobs) {
    // Overlapping lobules merge instead of stacking: a consolidation is as dense as airless lung, not denser.
    addEllipse(fill, b.x, b.y, b.rx, b.ry, b.angle, b.fill, Profile.plateau, 'max');
    addEllipse(envelope, b.x, b.y, b.rx, b.ry, b.angle, 1, Profile.plateau, 'max');
    const ext = Math.max(b.rx, b.ry);
    x0 = Math.min(x0, Math.max(0, Math.floor(b.x - ext)));
    y0 = Math.min(y0, Math.max(0, Math.floor(b.y - ext)));
    x1 = Math.max(x1, Math.min(width - 1, Math.ceil(b.x + ext)));
    y1 = Math.max(y1, Math.min(height - 1, Math.ceil(b.y + ext)));
  }
  return { fill, envelope, box: { x0, y0, x1, y1 } };
}

/**
 * Keeps a drawn finding where `keep(i, x, y)` > 0 (its lung's extent, and for a consolidation its lobe), multiplies
 * in a patchy texture, and writes the density it adds into `out`; `mask` gets the pixels where the finding reaches
 * MASK_LEVEL inside the visible lung field `label` (not behind the heart).
 */
function commit(
  drawn: Drawn,
  anatomy: AnatomyRender,
  label: number,
  keep: (i: number, x: number, y: number) => number,
  texture: { cell: number; floor: number; r: Random },
  out: Field,
  mask: Uint8Array,
): void {
  const aeration = anatomy.aeration;
  const { x0, y0, x1, y1 } = drawn.box;
  if (x1 < x0 || y1 < y0) return;
  const w = x1 - x0 + 1;
  const noise = valueNoise(w, y1 - y0 + 1, texture.cell, texture.r.next);
  for (let y = y0; y <= y1; y++) {
    for (let x = x0; x <= x1; x++) {
      const i = y * out.width + x;
      const f = drawn.fill.data[i] ?? 0;
      if (f <= 0) continue;
      const k = keep(i, x, y);
      if (k <= 0) continue;
      const n = noise[(y - y0) * w + (x - x0)] ?? 0;
      const filled = Math.min(1, k * f * (texture.floor + (1 - texture.floor) * 1.15 * n));
      out.data[i] = Math.max(out.data[i] ?? 0, filled * ((aeration.data[i] ?? 0) + FLUID_EXCESS));
      if (anatomy.lungs[i] === label && k * (drawn.envelope.data[i] ?? 0) >= MASK_LEVEL) mask[i] = 1;
    }
  }
}

/** A lung-local point inside `shape`'s lung (and well inside the lobe, if given), or undefined after many misses. */
function pointIn(
  anatomy: AnatomyRender,
  shape: LungShape,
  draw: () => { t: number; q: number },
  lobe?: Lobe,
): [number, number] | undefined {
  const width = anatomy.density.width;
  const height = anatomy.density.height;
  for (let attempt = 0; attempt < 200; attempt++) {
    const { t, q } = draw();
    if (lobe && lobe.weight(t, q) < 0.95) continue;
    const [x, y] = shape.toPixel(t, q);
    const xi = Math.floor(x);
    const yi = Math.floor(y);
    if (xi < 0 || yi < 0 || xi >= width || yi >= height) continue;
    if (anatomy.lungs[yi * width + xi] === shape.label) return [x, y];
  }
  return undefined;
}

function consolidation(anatomy: AnatomyRender, r: Random, out: Field, mask: Uint8Array): FindingSummary[] {
  const { width, height } = out;
  let best: { density: Field; mask: Uint8Array; area: number; summary: FindingSummary } | undefined;
  // A lobe mostly hidden behind the heart, or a centre near a fissure, can leave little of the consolidation in
  // view; try again (another lobe, another place) until it is large enough to be seen at 128 x 128.
  for (let attempt = 0; attempt < 6; attempt++) {
    const shape = r.pick(anatomy.lungShapes);
    const lobe = r.pick(shape.lobes);
    const center = pointIn(anatomy, shape, () => ({ t: r.uniform(0.1, 0.92), q: r.uniform(0.2, 0.8) }), lobe);
    if (!center) continue;
    const [cx, cy] = center;
    const radius = shape.widthPx * r.uniform(0.3, 0.45);
    const fill = r.uniform(0.85, 0.98);
    const blobs: Blob[] = [
      {
        x: cx,
        y: cy,
        rx: radius * r.uniform(0.85, 1.2),
        ry: radius * r.uniform(0.85, 1.2),
        angle: r.uniform(0, Math.PI),
        fill,
      },
    ];
    for (let k = r.int(2, 4); k > 0; k--) {
      const a = r.uniform(0, 2 * Math.PI);
      const d = radius * r.uniform(0.35, 0.65);
      blobs.push({
        x: cx + Math.cos(a) * d,
        y: cy + Math.sin(a) * d,
        rx: radius * r.uniform(0.45, 0.7),
        ry: radius * r.uniform(0.45, 0.7),
        angle: r.uniform(0, Math.PI),
        fill: fill * r.uniform(0.85, 1),
      });
    }
    const drawn = drawBlobs(width, height, blobs);
    const candidate = { density: createField(width, height), mask: new Uint8Array(width * height) };
    commit(
      drawn,
      anatomy,
      shape.label,
      (i, x, y) => {
        if (anatomy.lungExtent[i] !== shape.label) return 0;
        const { t, q } = shape.toLocal(x + 0.5, y + 0.5);
        return lobe.weight(t, q);
      },
      { cell: Math.max(2, radius * 0.35), floor: 0.8, r },
      candidate.density,
      candidate.mask,
    );
    let area = 0;
    for (const m of candidate.mask) area += m;
    const summary: FindingSummary = {
      kind: 'consolidation',
      lung: LUNG_NAME[shape.label as 1 | 2 | 3],
      lobe: lobe.name,
      count: 1,
    };
    if (!best || area > best.area) best = { ...candidate, area, summary };
    // At least half of the full blob's mask (pi * (0.82 radius)^2 for the plateau profile at MASK_LEVEL) in view.
    if (area >= 1.05 * radius * radius) break;
  }
  if (!best) return [];
  out.data.set(best.density.data);
  mask.set(best.mask);
  return [best.summary];
}

function groundGlass(anatomy: AnatomyRender, r: Random, out: Field, mask: Uint8Array): FindingSummary[] {
  const summaries: FindingSummary[] = [];
  const single = anatomy.lungShapes.length === 1;
  for (const shape of anatomy.lungShapes) {
    const wanted = single ? r.int(4, 7) : r.int(2, 4);
    const blobs: Blob[] = [];
    for (let k = 0; k < wanted; k++) {
      const range = r.pick(shape.peripheralQ);
      const center = pointIn(anatomy, shape, () => ({
        // sqrt: more opacities towards the bases.
        t: Math.min(0.95, 0.18 + 0.8 * Math.sqrt(r.next())),
        q: r.uniform(range[0], range[1]),
      }));
      if (!center) continue;
      const along = shape.widthPx * r.uniform(0.2, 0.3);
      blobs.push({
        x: center[0],
        y: center[1],
        rx: along * r.uniform(0.55, 0.85),
        ry: along,
        angle: anatomy.frame.placement.rotation + r.uniform(-0.35, 0.35),
        fill: r.uniform(0.6, 0.85),
      });
    }
    if (blobs.length === 0) continue;
    const drawn = drawBlobs(out.width, out.height, blobs);
    const cell = Math.max(2, shape.widthPx * 0.05);
    commit(
      drawn,
      anatomy,
      shape.label,
      (i) => (anatomy.lungExtent[i] === shape.label ? 1 : 0),
      { cell, floor: 0.6, r },
      out,
      mask,
    );
    summaries.push({ kind: 'ground-glass', lung: LUNG_NAME[shape.label as 1 | 2 | 3], count: blobs.length });
  }
  return summaries;
}

/** The findings of `className` for this anatomy, from the patient's own stream of findings. */
export function renderFindings(className: FindingClass, anatomy: AnatomyRender, patientSeed: number): Findings {
  const { width, height } = anatomy.density;
  const density = createField(width, height);
  const mask = new Uint8Array(width * height);
  if (className === 'normal' || anatomy.lungShapes.length === 0) return { density, mask, summaries: [] };
  const r = createRandom(patientSeed, 'findings', className);
  const summaries =
    className === 'pneumonia' ? consolidation(anatomy, r, density, mask) : groundGlass(anatomy, r, density, mask);
  return { density, mask, summaries };
}
