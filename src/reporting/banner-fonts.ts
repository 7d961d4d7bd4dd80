// The banner's typeface: DejaVu Sans (regular and bold), shipped in assets/fonts so that every site renders the
// same glyphs whatever fonts its operating system has (a headless server often has none at all).

import { GlobalFonts } from '@napi-rs/canvas';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { GatewayError } from '../errors.js';
import { packageRoot } from './package-root.js';

/** Our own family name, so that a system font called "DejaVu Sans" can never be picked instead. */
export const BANNER_FONT_FAMILY = 'CXR Gateway Sans';

const FONT_FILES = ['DejaVuSans.ttf', 'DejaVuSans-Bold.ttf'] as const;

let registered = false;

/** Registers the fonts once per process; throws a GatewayError naming the missing file. */
export function ensureBannerFonts(): void {
  if (registered) return;
  const dir = path.join(packageRoot(), 'assets', 'fonts');
  for (const file of FONT_FILES) {
    const fontPath = path.join(dir, file);
    if (!existsSync(fontPath) || GlobalFonts.registerFromPath(fontPath, BANNER_FONT_FAMILY) === null) {
      throw new GatewayError(
        'RENDER_FONT_MISSING',
        `the banner font ${fontPath} is missing or unreadable; reinstall the gateway (assets/fonts ships with it)`,
      );
    }
  }
  registered = true;
}

/** A CSS font shorthand in the banner family. */
export function bannerFont(sizePx: number, bold = false): string {
  return `${bold ? 'bold ' : ''}${Math.round(sizePx)}px "${BANNER_FONT_FAMILY}"`;
}
