// Burned-in text the way modalities and radiographers leave it: a lead side marker ("L"/"R" in a box), "PORTABLE"
// and the position on bedside films, a view label, a site name. Drawn with the real font (DejaVu Sans Bold through
// Skia), only where the box around the text stays clear of the lung fields, so the markers are a nuisance for the
// classifier but never cover a finding. Which markers appear depends on the view and the image's own random stream,
// never on the class: they must not become a shortcut.

import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createCanvas, GlobalFonts } from '@napi-rs/canvas';
import { GatewayError } from '../errors.js';
import type { Random } from './random.js';

const FONT_FAMILY = 'CXR Phantom Sans';
const FONT_FILE = path.join('assets', 'fonts', 'DejaVuSans-Bold.ttf');
let fontRegistered = false;

function ensureFont(): void {
  if (fontRegistered) return;
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = path.join(dir, FONT_FILE);
    if (existsSync(candidate)) {
      if (GlobalFonts.registerFromPath(candidate, FONT_FAMILY) === null) break;
      fontRegistered = true;
      return;
    }
    const parent = path.dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  throw new GatewayError(
    'PHANTOMS_FONT_MISSING',
    `cannot load the marker font ${FONT_FILE} from the gateway's installation; reinstall it (assets/fonts ships with the package)`,
  );
}

export interface MarkerContext {
  view: 'PA' | 'AP' | 'LL';
  bodyPart: 'CHEST' | 'HAND' | 'SKULL';
  /** 'L' or 'R' for an extremity; chest films carry the patient's left marker. */
  laterality?: 'L' | 'R';
}

export interface BurnedText {
  /** The texts drawn, in drawing order. */
  markers: string[];
  /** Coverage (0..1) of the drawn text per pixel; the image is composited towards white with it. */
  alpha: Float32Array;
}

const SITES = ['PHANTOM GENERAL', 'SYNTHETIC CLINIC', 'TEST HOSPITAL 1'] as const;

function chooseTexts(r: Random, context: MarkerContext): Array<{ text: string; boxed: boolean; size: number }> {
  const side = context.laterality ?? (context.view === 'LL' ? 'L' : r.chance(0.85) ? 'L' : 'R');
  const texts: Array<{ text: string; boxed: boolean; size: number }> = [{ text: side, boxed: true, size: 0.05 }];
  if (context.view === 'AP' && context.bodyPart === 'CHEST') {
    texts.push({ text: 'PORTABLE', boxed: false, size: 0.03 });
    if (r.chance(0.6)) texts.push({ text: r.chance(0.5) ? 'SUPINE' : 'SEMI-ERECT', boxed: false, size: 0.025 });
  } else if (r.chance(0.4)) {
    texts.push({ text: context.view === 'LL' ? 'LAT' : context.view, boxed: false, size: 0.03 });
  }
  if (r.chance(0.5)) texts.push({ text: r.pick(SITES), boxed: false, size: 0.022 });
  return texts;
}

/** The part of the image that was exposed (inside the collimator blades), inclusive pixel bounds. */
export interface ExposedArea {
  x0: number;
  y0: number;
  x1: number;
  y1: number;
}

/**
 * Draws the markers into an alpha field the size of the image, each in a corner or edge slot of the exposed area
 * whose box (plus a margin) holds no pixel with `forbidden[i] !== 0` and overlaps no other marker. A marker with no
 * free slot is left out.
 */
export function burnTextMarkers(
  rows: number,
  columns: number,
  forbidden: Uint8Array,
  context: MarkerContext,
  r: Random,
  exposed: ExposedArea = { x0: 0, y0: 0, x1: columns - 1, y1: rows - 1 },
): BurnedText {
  ensureFont();
  const canvas = createCanvas(columns, rows);
  const ctx = canvas.getContext('2d');
  ctx.fillStyle = '#ffffff';
  ctx.strokeStyle = '#ffffff';
  ctx.textBaseline = 'top';
  const edge = Math.min(rows, columns);
  const margin = Math.max(2, Math.round(edge * 0.02));
  const taken: Array<[number, number, number, number]> = [];
  const markers: string[] = [];
  for (const { text, boxed, size } of chooseTexts(r, context)) {
    const px = Math.max(7, Math.round(edge * size));
    ctx.font = `bold ${px}px "${FONT_FAMILY}"`;
    const pad = boxed ? Math.max(2, Math.round(px * 0.25)) : 0;
    const w = Math.ceil(ctx.measureText(text).width) + 2 * pad;
    const h = Math.ceil(px * 1.15) + 2 * pad;
    const left = exposed.x0 + margin;
    const top = exposed.y0 + margin;
    const right = exposed.x1 + 1 - margin - w;
    const bottom = exposed.y1 + 1 - margin - h;
    if (right < left || bottom < top) continue;
    const midX = Math.round((left + right) / 2);
    const midY = Math.round((top + bottom) / 2);
    const slots: Array<[number, number]> = [
      [left, top],
      [right, top],
      [left, bottom],
      [right, bottom],
      [midX, top],
      [midX, bottom],
      [left, midY],
      [right, midY],
    ];
    // A stable shuffle of the slots from the image's stream.
    const order = slots.map((slot) => ({ slot, key: r.next() })).sort((a, b) => a.key - b.key);
    const free = order.find(({ slot: [x, y] }) =>
      isFree(x - margin, y - margin, w + 2 * margin, h + 2 * margin, columns, rows, forbidden, taken),
    );
    if (!free) continue;
    const [x, y] = free.slot;
    if (boxed) {
      ctx.lineWidth = Math.max(1, Math.round(px * 0.08));
      ctx.strokeRect(x + ctx.lineWidth / 2, y + ctx.lineWidth / 2, w - ctx.lineWidth, h - ctx.lineWidth);
    }
    ctx.fillText(text, x + pad, y + pad + Math.round(px * 0.05));
    taken.push([x - margin, y - margin, w + 2 * margin, h + 2 * margin]);
    markers.push(text);
  }
  // Read back only the boxes that hold text: the whole canvas of a large image is megabytes of nothing.
  const alpha = new Float32Array(rows * columns);
  for (const [tx, ty, tw, th] of taken) {
    const x0 = Math.max(0, tx);
    const y0 = Math.max(0, ty);
    const w = Math.min(columns, tx + tw) - x0;
    const h = Math.min(rows, ty + th) - y0;
    if (w <= 0 || h <= 0) continue;
    const rgba = ctx.getImageData(x0, y0, w, h).data;
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++) alpha[(y0 + y) * columns + x0 + x] = (rgba[(y * w + x) * 4 + 3] ?? 0) / 255;
  }
  return { markers, alpha };
}

function isFree(
  x: number,
  y: number,
  w: number,
  h: number,
  columns: number,
  rows: number,
  forbidden: Uint8Array,
  taken: ReadonlyArray<readonly [number, number, number, number]>,
): boolean {
  for (const [tx, ty, tw, th] of taken) if (x < tx + tw && tx < x + w && y < ty + th && ty < y + h) return false;
  const x0 = Math.max(0, x);
  const y0 = Math.max(0, y);
  const x1 = Math.min(columns, x + w);
  const y1 = Math.min(rows, y + h);
  for (let yy = y0; yy < y1; yy++)
    for (let xx = x0; xx < x1; xx++) if (forbidden[yy * columns + xx] !== 0) return false;
  return true;
}
