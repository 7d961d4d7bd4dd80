// The heatmap picture: the windowed X-ray in grey, the relevance map coloured over it (heatmap-colormap), and
// the banner as an extra strip above or below. Optionally the plain X-ray and the overlay side by side, so the
// reader can compare the anatomy without colour. Pictures are capped in size (longest edge `maxEdge` per panel,
// 2048 by default): a 3000-pixel detector image gains nothing at PACS viewing sizes from a full-resolution
// heatmap whose information content is the model's 224 x 224 input, and the cap bounds time and object size.

import { GatewayError } from '../errors.js';
import { resample } from '../imaging/resize.js';
import { bannerRows, renderBanner, type BannerContent } from './banner.js';
import {
  DEFAULT_COLORMAP,
  LUT_SIZE,
  divergingLut,
  lutIndexOfScaled,
  relevanceScale,
  type ColormapOptions,
} from './heatmap-colormap.js';
import { placementMask, relevanceOnPicture, type RelevanceMap } from './relevance-mapping.js';

/** 8-bit RGB, rows x columns x 3, colour-by-pixel (PlanarConfiguration 0): what the Secondary Capture carries. */
export interface RgbImage {
  rows: number;
  columns: number;
  data: Uint8Array;
}

export type OverlayLayout = 'overlay' | 'side-by-side';

export interface OverlayOptions {
  /** `overlay`: one panel; `side-by-side`: the plain X-ray left, the overlay right (twice as wide). */
  layout: OverlayLayout;
  /** Longest edge of each picture panel in pixels; larger sources are scaled down (antialiased). */
  maxEdge: number;
  bannerPosition: 'top' | 'bottom';
  /** Percentile of |R| drawn at full colour. */
  scalePercentile: number;
  colormap: ColormapOptions;
  /** false: banner without text (for tests that show the text is there). */
  drawText: boolean;
}

export const DEFAULT_OVERLAY_OPTIONS: OverlayOptions = {
  layout: 'overlay',
  maxEdge: 2048,
  bannerPosition: 'bottom',
  scalePercentile: 99.5,
  colormap: DEFAULT_COLORMAP,
  drawText: true,
};

export interface OverlayInput {
  /** The whole source image as display values in [0, 1] (VOI applied, bright = dense), row-major. */
  display: { pixels: Float32Array; rows: number; columns: number };
  relevance: RelevanceMap;
  banner: BannerContent;
}

export interface PanelPlacement {
  kind: 'original' | 'overlay';
  top: number;
  left: number;
  rows: number;
  columns: number;
}

export interface RenderedOverlay {
  image: RgbImage;
  panels: PanelPlacement[];
  banner: { top: number; rows: number };
  /** Relevance drawn at full colour (the robust scale); 0 when the map is zero and nothing is coloured. */
  scale: number;
}

export function renderOverlay(input: OverlayInput, overrides: Partial<OverlayOptions> = {}): RenderedOverlay {
  const options = checkOptions({ ...DEFAULT_OVERLAY_OPTIONS, ...overrides });
  const { display, relevance } = input;
  checkInput(input);

  // Panel size: the source scaled down to the cap, never up.
  const factor = Math.min(1, options.maxEdge / Math.max(display.rows, display.columns));
  const rows = Math.max(1, Math.round(display.rows * factor));
  const columns = Math.max(1, Math.round(display.columns * factor));
  const grey = factor < 1 ? resample(display.pixels, display.rows, display.columns, rows, columns) : display.pixels;

  const lut = divergingLut(options.colormap);
  const scale = relevanceScale(
    relevance.values,
    placementMask(relevance.size, relevance.placement),
    options.scalePercentile,
  );
  // A zero scale (an all-zero map) maps every pixel to the transparent middle entry.
  const inverse = scale > 0 ? 1 / scale : 0;
  const onPicture = relevanceOnPicture(relevance, rows, columns);

  const sideBySide = options.layout === 'side-by-side';
  const width = sideBySide ? 2 * columns : columns;
  const banner = renderBanner(input.banner, width, lut, options.drawText);
  const pictureTop = options.bannerPosition === 'top' ? banner.rows : 0;
  const bannerTop = options.bannerPosition === 'top' ? 0 : rows;
  const totalRows = rows + banner.rows;
  const data = new Uint8Array(totalRows * width * 3);

  // Blending in integers: each LUT entry's alpha as 0..256 and its colour premultiplied by it, so a pixel costs
  // one table lookup and three multiply-adds (this loop runs millions of times per picture).
  const alpha = new Uint32Array(LUT_SIZE);
  const premultiplied = new Uint32Array(LUT_SIZE * 3);
  for (let e = 0; e < LUT_SIZE; e++) {
    const a = Math.round(((lut[e * 4 + 3] ?? 0) * 256) / 255);
    alpha[e] = a;
    for (let k = 0; k < 3; k++) premultiplied[e * 3 + k] = (lut[e * 4 + k] ?? 0) * a;
  }
  const half = (LUT_SIZE - 1) / 2;
  const toIndex = inverse * half;
  const overlayLeft = sideBySide ? columns : 0;
  for (let y = 0; y < rows; y++) {
    const rowBase = (pictureTop + y) * width * 3;
    for (let x = 0; x < columns; x++) {
      const i = y * columns + x;
      const v = grey[i] ?? 0;
      const g = v <= 0 ? 0 : v >= 1 ? 255 : (v * 255 + 0.5) | 0;
      let o = rowBase + (overlayLeft + x) * 3;
      const e = lutIndexOfScaled((onPicture[i] ?? 0) * toIndex);
      const a = alpha[e] ?? 0;
      const keep = g * (256 - a) + 128;
      data[o] = (keep + (premultiplied[e * 3] ?? 0)) >> 8;
      data[o + 1] = (keep + (premultiplied[e * 3 + 1] ?? 0)) >> 8;
      data[o + 2] = (keep + (premultiplied[e * 3 + 2] ?? 0)) >> 8;
      if (sideBySide) {
        o = rowBase + x * 3;
        data[o] = g;
        data[o + 1] = g;
        data[o + 2] = g;
      }
    }
  }
  data.set(banner.rgb, bannerTop * width * 3);

  const panels: PanelPlacement[] = sideBySide
    ? [
        { kind: 'original', top: pictureTop, left: 0, rows, columns },
        { kind: 'overlay', top: pictureTop, left: columns, rows, columns },
      ]
    : [{ kind: 'overlay', top: pictureTop, left: 0, rows, columns }];
  return {
    image: { rows: totalRows, columns: width, data },
    panels,
    banner: { top: bannerTop, rows: banner.rows },
    scale,
  };
}

/** Output size of a render, without rendering (e.g. to check a PACS's size limit up front). */
export function overlaySize(
  sourceRows: number,
  sourceColumns: number,
  overrides: Partial<OverlayOptions> = {},
): { rows: number; columns: number } {
  const options = checkOptions({ ...DEFAULT_OVERLAY_OPTIONS, ...overrides });
  const factor = Math.min(1, options.maxEdge / Math.max(sourceRows, sourceColumns));
  const rows = Math.max(1, Math.round(sourceRows * factor));
  const columns = Math.max(1, Math.round(sourceColumns * factor)) * (options.layout === 'side-by-side' ? 2 : 1);
  return { rows: rows + bannerRows(columns), columns };
}

function checkOptions(o: OverlayOptions): OverlayOptions {
  if (!Number.isInteger(o.maxEdge) || o.maxEdge < 64 || o.maxEdge > 8192) {
    throw new GatewayError(
      'RENDER_OPTIONS',
      `the heatmap size cap must be a whole number of pixels from 64 to 8192, got ${o.maxEdge}`,
    );
  }
  if (!(o.scalePercentile > 0 && o.scalePercentile <= 100)) {
    throw new GatewayError(
      'RENDER_OPTIONS',
      `the heatmap scale percentile must be in (0, 100], got ${o.scalePercentile}`,
    );
  }
  if (o.layout !== 'overlay' && o.layout !== 'side-by-side') {
    throw new GatewayError(
      'RENDER_OPTIONS',
      `the heatmap layout must be 'overlay' or 'side-by-side', got '${String(o.layout)}'`,
    );
  }
  return o;
}

function checkInput({ display, relevance }: OverlayInput): void {
  if (display.pixels.length !== display.rows * display.columns) {
    throw new GatewayError(
      'RENDER_INPUT',
      `the display image has ${display.pixels.length} values for ${display.rows} x ${display.columns} pixels`,
    );
  }
  const p = relevance.placement;
  if (relevance.values.length !== relevance.size * relevance.size) {
    throw new GatewayError(
      'RENDER_INPUT',
      `the relevance map has ${relevance.values.length} values, not ${relevance.size} x ${relevance.size}; it must be the model input's size`,
    );
  }
  if (
    p.top < 0 ||
    p.left < 0 ||
    p.rows < 1 ||
    p.columns < 1 ||
    p.top + p.rows > relevance.size ||
    p.left + p.columns > relevance.size
  ) {
    throw new GatewayError(
      'RENDER_INPUT',
      `the preprocessing placement ${JSON.stringify(p)} does not fit the ${relevance.size}-pixel model input`,
    );
  }
}
