// What an anatomy renderer hands to the rest of the phantom pipeline: a density image (brighter = more
// attenuation, roughly 0 for air to 1 for bone over mediastinum) and the lung geometry findings are placed in.

import type { Frame, Point } from './geometry.js';
import type { Field } from './raster.js';

/** Lung labels in AnatomyRender.lungs. */
export const LungLabel = {
  none: 0,
  /** The patient's right lung: the image's left on a frontal view. */
  right: 1,
  left: 2,
  /** Both lungs superimposed (lateral view). */
  superimposed: 3,
} as const;
export type LungLabelValue = (typeof LungLabel)[keyof typeof LungLabel];

/** A lobe (or, on a lateral view, a zone) in lung-local coordinates. */
export interface Lobe {
  name: string;
  /**
   * How much of a consolidation at (t, q) this lobe keeps: 1 inside, 0 outside, a hard step where the fissure is
   * seen edge-on in this view (the minor fissure on a PA film), a soft ramp where lobes overlap in projection.
   * t: 0 at the apex, 1 at the base; q: 0 at the medial (frontal) or anterior (lateral) edge, 1 at the other.
   */
  weight(t: number, q: number): number;
}

export interface LungShape {
  label: LungLabelValue;
  lobes: readonly Lobe[];
  /** Pixel position of a lung-local point. */
  toPixel(t: number, q: number): Point;
  /** Lung-local coordinates of a pixel position (values outside [0, 1] are outside the lung's extent). */
  toLocal(x: number, y: number): { t: number; q: number };
  /** Lung width at mid height, in pixels: the size unit for findings. */
  widthPx: number;
  /** Ranges of q that count as the lung periphery (subpleural), where COVID-19-like opacities sit. */
  peripheralQ: ReadonlyArray<readonly [number, number]>;
}

export interface AnatomyRender {
  density: Field;
  /**
   * How much density the air in the lungs takes away at each pixel (net of the vessels seen against it), already
   * included in `density`. A finding that fills a fraction f of the airspaces adds f * aeration back.
   */
  aeration: Field;
  /** LungLabel per pixel (visible lung fields, not behind the heart); all 0 for non-chest anatomy. */
  lungs: Uint8Array;
  /**
   * LungLabel per pixel wherever the lung has any air, behind the heart and along its antialiased edge included:
   * where a finding may change density (a consolidation next to the heart hides its border, the silhouette sign).
   */
  lungExtent: Uint8Array;
  lungShapes: readonly LungShape[];
  frame: Frame;
  patientSex: 'M' | 'F';
}
