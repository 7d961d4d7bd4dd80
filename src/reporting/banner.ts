// The burned-in banner: a strip added above or below the picture (never drawn over it, so no part of the lungs
// is hidden) that says what the picture is: predicted class, every probability, model name and version, the
// explanation method, the use notice with the model's intended use, and a legend of the colour scale.
// Everything scales with the strip's width; text that does not fit is shortened with an ellipsis, never clipped.

import { createCanvas, type SKRSContext2D } from '@napi-rs/canvas';
import { bannerFont, ensureBannerFonts } from './banner-fonts.js';
import { LUT_SIZE } from './heatmap-colormap.js';

export interface BannerContent {
  predicted: string;
  /** Every class with its probability (0..1), in the model's order. */
  probabilities: ReadonlyArray<{ name: string; probability: number }>;
  /** The class the heatmap explains (usually the predicted one). */
  explainedClass: string;
  modelName: string;
  modelVersion: string;
  /** How the heatmap was computed, e.g. "LRP, composite isnet". */
  method: string;
  /** Shown first in warning colour, e.g. "NOT FOR DIAGNOSTIC USE"; empty: no notice. */
  usageNotice: string;
  /** The model manifest's intended-use text. */
  intendedUse: string;
}

export interface BannerPixels {
  rows: number;
  columns: number;
  /** rows x columns x 3, RGB. */
  rgb: Uint8Array;
}

const BACKGROUND = '#141414';
const TEXT = '#f2f2f2';
const SECONDARY_TEXT = '#bdbdbd';
const WARNING = '#ffb000';
const FOR_TEXT = '#ff7060';
const AGAINST_TEXT = '#6fa8ff';
/** The legend bar shows the colours as they look over mid-grey anatomy. */
const LEGEND_GREY = 128;

interface Layout {
  font: number;
  pad: number;
  line: number;
  /** Legend to the right of the text (wide strips) or under it (narrow ones). */
  legendBeside: boolean;
  textWidth: number;
  legendX: number;
  legendY: number;
  legendWidth: number;
  rows: number;
}

function layout(columns: number): Layout {
  const font = Math.min(34, Math.max(11, Math.round(columns / 52)));
  const pad = Math.round(font * 0.6);
  const line = Math.round(font * 1.35);
  const textHeight = Math.round(line * 5.2);
  const legendHeight = Math.round(line * 2.9);
  const legendBeside = columns >= font * 40;
  if (legendBeside) {
    const legendWidth = Math.round(Math.min(columns * 0.3, font * 16));
    return {
      font,
      pad,
      line,
      legendBeside,
      textWidth: columns - legendWidth - 3 * pad,
      legendX: columns - legendWidth - pad,
      legendY: pad + Math.round((textHeight - legendHeight) / 2),
      legendWidth,
      rows: 2 * pad + Math.max(textHeight, legendHeight),
    };
  }
  return {
    font,
    pad,
    line,
    legendBeside,
    textWidth: columns - 2 * pad,
    legendX: pad,
    legendY: 2 * pad + textHeight,
    legendWidth: columns - 2 * pad,
    rows: 3 * pad + textHeight + legendHeight,
  };
}

/** Height of the banner for a picture `columns` wide. */
export function bannerRows(columns: number): number {
  return layout(columns).rows;
}

/**
 * Draws the banner `columns` wide. `lut` is the overlay's colour table (heatmap-colormap), so the legend shows
 * exactly the colours of the picture. `drawText: false` draws the strip and the legend bar only; it exists so
 * that tests can show the text is really there.
 */
export function renderBanner(content: BannerContent, columns: number, lut: Uint8Array, drawText = true): BannerPixels {
  ensureBannerFonts();
  const l = layout(columns);
  const canvas = createCanvas(columns, l.rows);
  const ctx = canvas.getContext('2d');
  ctx.fillStyle = BACKGROUND;
  ctx.fillRect(0, 0, columns, l.rows);
  ctx.textBaseline = 'alphabetic';
  if (drawText) drawTextLines(ctx, content, l);
  drawLegend(ctx, content, l, lut, drawText);

  const rgba = ctx.getImageData(0, 0, columns, l.rows).data;
  const rgb = new Uint8Array(columns * l.rows * 3);
  for (let i = 0, j = 0; j < rgb.length; i += 4, j += 3) {
    rgb[j] = rgba[i] ?? 0;
    rgb[j + 1] = rgba[i + 1] ?? 0;
    rgb[j + 2] = rgba[i + 2] ?? 0;
  }
  return { rows: l.rows, columns, rgb };
}

function percent(p: number): string {
  return `${(p * 100).toFixed(1)} %`;
}

function drawTextLines(ctx: SKRSContext2D, c: BannerContent, l: Layout): void {
  const x = l.pad;
  let y = l.pad + Math.round(l.font * 1.15);
  const predictedP = c.probabilities.find((p) => p.name === c.predicted)?.probability;
  const title = `AI result: ${c.predicted}${predictedP === undefined ? '' : ` (${percent(predictedP)})`}`;
  ctx.fillStyle = TEXT;
  ctx.font = bannerFont(l.font * 1.15, true);
  ctx.fillText(fit(ctx, title, l.textWidth), x, y);

  y += l.line;
  ctx.font = bannerFont(l.font);
  ctx.fillText(
    fit(ctx, c.probabilities.map((p) => `${p.name} ${percent(p.probability)}`).join('   '), l.textWidth),
    x,
    y,
  );

  y += l.line;
  ctx.fillStyle = SECONDARY_TEXT;
  ctx.fillText(
    fit(ctx, `Model ${c.modelName} ${c.modelVersion}   Heatmap: ${c.method}, for ${c.explainedClass}`, l.textWidth),
    x,
    y,
  );

  // The notice, then the intended use, wrapped over the last two lines.
  y += l.line;
  let used = 0;
  if (c.usageNotice !== '') {
    ctx.fillStyle = WARNING;
    ctx.font = bannerFont(l.font, true);
    const notice = fit(ctx, c.usageNotice, l.textWidth);
    ctx.fillText(notice, x, y);
    used = ctx.measureText(`${notice}  `).width;
  }
  if (c.intendedUse === '') return;
  ctx.fillStyle = SECONDARY_TEXT;
  ctx.font = bannerFont(l.font);
  const words = `${c.usageNotice === '' ? '' : '\u2014 '}${c.intendedUse}`.split(/\s+/).filter((w) => w !== '');
  let first = '';
  let taken = 0;
  while (taken < words.length) {
    const next = first === '' ? (words[taken] ?? '') : `${first} ${words[taken] ?? ''}`;
    if (ctx.measureText(next).width > l.textWidth - used) break;
    first = next;
    taken++;
  }
  if (first !== '') ctx.fillText(first, x + used, y);
  const rest = words.slice(taken).join(' ');
  if (rest !== '') ctx.fillText(fit(ctx, rest, l.textWidth), x, y + l.line);
}

function drawLegend(ctx: SKRSContext2D, c: BannerContent, l: Layout, lut: Uint8Array, drawText: boolean): void {
  const small = Math.max(10, Math.round(l.font * 0.9));
  const barHeight = Math.max(6, Math.round(l.font * 0.8));
  const barY = l.legendY + Math.round(l.line * 0.95);
  const width = Math.max(1, l.legendWidth);
  if (drawText) {
    ctx.fillStyle = TEXT;
    ctx.font = bannerFont(small);
    ctx.textAlign = 'left';
    ctx.fillText(fit(ctx, `Relevance for ${c.explainedClass}`, width), l.legendX, l.legendY + small);
  }
  // The bar: v from -1 (left) to +1 (right), each colour blended over mid-grey as the overlay blends it.
  const bar = ctx.createImageData(width, barHeight);
  for (let x = 0; x < width; x++) {
    const entry = Math.round((x / Math.max(1, width - 1)) * (LUT_SIZE - 1)) * 4;
    const a = (lut[entry + 3] ?? 0) / 255;
    const rgb = [0, 1, 2].map((k) => Math.round(LEGEND_GREY + ((lut[entry + k] ?? 0) - LEGEND_GREY) * a));
    for (let y = 0; y < barHeight; y++) {
      const o = (y * width + x) * 4;
      bar.data[o] = rgb[0] ?? 0;
      bar.data[o + 1] = rgb[1] ?? 0;
      bar.data[o + 2] = rgb[2] ?? 0;
      bar.data[o + 3] = 255;
    }
  }
  ctx.putImageData(bar, l.legendX, barY);
  if (!drawText) return;
  const labelY = barY + barHeight + small + Math.round(small * 0.2);
  ctx.font = bannerFont(small, true);
  ctx.fillStyle = AGAINST_TEXT;
  ctx.textAlign = 'left';
  ctx.fillText('against', l.legendX, labelY);
  ctx.fillStyle = SECONDARY_TEXT;
  ctx.textAlign = 'center';
  ctx.fillText('0', l.legendX + width / 2, labelY);
  ctx.fillStyle = FOR_TEXT;
  ctx.textAlign = 'right';
  ctx.fillText('for', l.legendX + width, labelY);
  ctx.textAlign = 'left';
}

/** The text, shortened with an ellipsis until it fits `maxWidth` in the current font. */
function fit(ctx: SKRSContext2D, text: string, maxWidth: number): string {
  if (ctx.measureText(text).width <= maxWidth) return text;
  let lo = 0;
  let hi = text.length;
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (ctx.measureText(`${text.slice(0, mid)}\u2026`).width <= maxWidth) lo = mid;
    else hi = mid - 1;
  }
  return lo === 0 ? '' : `${text.slice(0, lo).trimEnd()}\u2026`;
}
