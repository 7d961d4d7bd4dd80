// Pulmonary vascular markings: branching trees of tapering tubes from each hilum towards the periphery. They give
// the lungs the texture a classifier must look past (and which ground-glass opacity, unlike consolidation, leaves
// visible), and make a normal lung more than a flat dark region.

import type { Point } from './geometry.js';
import { addEllipse, addTube, Profile, type Field } from './raster.js';
import type { Random } from './random.js';

export interface VesselTreeOptions {
  /** Hilum, pixels. */
  hilum: Point;
  /** Directions (radians, image plane, y downwards) of the main branches. */
  directions: readonly number[];
  /** Pixels per patient unit. */
  scale: number;
  /** Length of a main branch, patient units. */
  length: number;
  /** Density per patient unit of vessel radius (a thicker vessel is proportionally denser). */
  densityPerRadius: number;
}

const MAX_DEPTH = 5;

/** Adds the vessel trees of one lung to `field` (unclipped: the caller masks them to the lung). */
export function addVesselTree(field: Field, options: VesselTreeOptions, random: Random): void {
  const { hilum, scale } = options;
  addEllipse(field, hilum[0], hilum[1], 0.075 * scale, 0.11 * scale, 0, 0.05, Profile.cylinder);
  const grow = (from: Point, angle: number, length: number, radius: number, depth: number): void => {
    const to: Point = [from[0] + Math.cos(angle) * length * scale, from[1] + Math.sin(angle) * length * scale];
    const r0 = Math.max(0.5, radius * scale);
    const r1 = Math.max(0.5, radius * 0.8 * scale);
    // 'max': where branches meet, the vessel is as dense as its thickest branch, not the sum of overlapping ends.
    addTube(field, from, to, r0, r1, options.densityPerRadius * radius, Profile.cylinder, 'max');
    if (depth >= MAX_DEPTH) return;
    const spread = random.uniform(0.25, 0.5);
    const bend = random.uniform(-0.12, 0.12);
    grow(to, angle + bend - spread, length * random.uniform(0.62, 0.78), radius * 0.72, depth + 1);
    grow(
      to,
      angle + bend + spread * random.uniform(0.6, 1),
      length * random.uniform(0.62, 0.78),
      radius * 0.7,
      depth + 1,
    );
  };
  for (const direction of options.directions) {
    grow(
      hilum,
      direction + random.uniform(-0.15, 0.15),
      options.length * random.uniform(0.8, 1.1),
      random.uniform(0.022, 0.03),
      1,
    );
  }
}
