// A PA hand radiograph (BodyPartExamined HAND), fingers up: soft-tissue silhouette of forearm, palm and spread
// fingers; distal radius and ulna, two rows of carpal bones, five metacarpals and the phalanges with joint spaces.
// It exists so that routing can be tested with an image that is plainly not a chest.

import type { AnatomyRender } from './anatomy.js';
import { clamp01, Frame, smoothClosed, type Point } from './geometry.js';
import { addEllipse, addTube, blur, cloneField, createField, fillPolygon, Profile, type Field } from './raster.js';
import { createRandom } from './random.js';

export interface HandOptions {
  rows: number;
  columns: number;
  patientSeed: number;
  seed: number;
}

function along(from: Point, angle: number, length: number): Point {
  return [from[0] + Math.sin(angle) * length, from[1] - Math.cos(angle) * length];
}

export function renderHand(options: HandOptions): AnatomyRender & { laterality: 'L' | 'R' } {
  const { rows, columns } = options;
  const r = createRandom(options.patientSeed, 'anatomy', 'hand');
  const pose = createRandom(options.seed, 'pose');
  const laterality = pose.chance(0.5) ? 'L' : 'R';
  // Left hand palm down, seen from the tube: thumb to the image's right.
  const m = laterality === 'L' ? 1 : -1;
  const scale = Math.min(rows * 0.36, columns * 0.5) * pose.uniform(0.85, 1.0);
  const frame = new Frame({
    centerX: columns / 2 + columns * pose.uniform(-0.05, 0.05),
    centerY: rows * 0.55 + rows * pose.uniform(-0.03, 0.03),
    scale,
    rotation: (8 * Math.PI * pose.normal()) / 180,
  });
  const soft = createField(columns, rows);
  const bone = createField(columns, rows);
  const px = (p: Point): Point => frame.toPixel(p[0], p[1]);
  const tube = (
    field: Field,
    a: Point,
    b: Point,
    r0: number,
    r1: number,
    amplitude: number,
    profile: (s: number) => number,
  ): void => addTube(field, px(a), px(b), r0 * scale, r1 * scale, amplitude, profile);

  // Forearm and palm.
  // Outline with the thumb side at +u (mirrored for a right hand); the thenar eminence bulges towards the thumb.
  const palmOutline: Point[] = [
    [-0.34, 2.5],
    [-0.3, 0.75],
    [-0.36, 0.3],
    [-0.34, -0.3],
    [0.0, -0.42],
    [0.3, -0.32],
    [0.5, 0.1],
    [0.38, 0.5],
    [0.32, 0.75],
    [0.34, 2.5],
  ];
  const palm = smoothClosed(
    palmOutline.map(([u, v]): Point => [u * m, v]),
    5,
  );
  const palmField = createField(columns, rows);
  fillPolygon(palmField, frame.toPixels(palm), 1);
  const depth = cloneField(palmField);
  blur(depth, 0.12 * scale, 2);
  for (let i = 0; i < soft.data.length; i++)
    soft.data[i] = (palmField.data[i] ?? 0) * (0.2 + 0.22 * clamp01(((depth.data[i] ?? 0) - 0.5) * 2));

  // Radius (thumb side) and ulna.
  tube(bone, [0.17 * m, 2.5], [0.17 * m, 0.8], 0.1, 0.13, 0.3, Profile.cortex);
  tube(bone, [-0.18 * m, 2.5], [-0.17 * m, 0.85], 0.075, 0.08, 0.3, Profile.cortex);
  // Carpal bones, two rows.
  for (const [u, v, ru, rv] of [
    [0.2, 0.64, 0.085, 0.065],
    [0.03, 0.66, 0.075, 0.065],
    [-0.13, 0.63, 0.07, 0.06],
    [-0.22, 0.58, 0.045, 0.045],
    [0.25, 0.45, 0.07, 0.06],
    [0.12, 0.43, 0.055, 0.055],
    [0.0, 0.44, 0.065, 0.085],
    [-0.14, 0.45, 0.07, 0.075],
  ] as const) {
    const [x, y] = px([u * m, v]);
    addEllipse(bone, x, y, ru * scale, rv * scale, r.uniform(-0.3, 0.3), 0.28, Profile.cortex);
  }

  // Metacarpals and phalanges. Fingers from the thumb (0) to the little finger (4).
  const spread = r.uniform(0.06, 0.16);
  const fingers = [
    { base: [0.27, 0.38], angle: 0.75, meta: 0.4, phalanges: [0.3, 0.22] },
    { base: [0.15, 0.35], angle: spread, meta: 0.62, phalanges: [0.4, 0.24, 0.17] },
    { base: [0.04, 0.33], angle: 0.02, meta: 0.64, phalanges: [0.45, 0.28, 0.18] },
    { base: [-0.07, 0.35], angle: -spread, meta: 0.6, phalanges: [0.42, 0.26, 0.17] },
    { base: [-0.17, 0.38], angle: -2 * spread - 0.05, meta: 0.55, phalanges: [0.33, 0.2, 0.15] },
  ] as const;
  for (const f of fingers) {
    const angle = f.angle * m + r.uniform(-0.04, 0.04);
    const start: Point = [f.base[0] * m, f.base[1]];
    const head = along(start, angle, f.meta);
    tube(bone, start, head, 0.06, 0.055, 0.3, Profile.cortex);
    let joint = along(head, angle, 0.03);
    let radius = 0.055;
    let tip = joint;
    for (const length of f.phalanges) {
      tip = along(joint, angle, length);
      tube(bone, joint, tip, radius, radius * 0.85, 0.3, Profile.cortex);
      joint = along(tip, angle, 0.028);
      radius *= 0.85;
    }
    // The finger's soft tissue, from the knuckle to just beyond the bone tip.
    tube(soft, head, along(tip, angle, 0.06), 0.12, 0.09, 0.3, Profile.cylinder);
  }
  blur(bone, 0.004 * scale, 1);

  const density = createField(columns, rows);
  for (let i = 0; i < density.data.length; i++)
    density.data[i] = Math.min(0.42, soft.data[i] ?? 0) + (bone.data[i] ?? 0);
  return {
    density,
    aeration: createField(columns, rows),
    lungs: new Uint8Array(rows * columns),
    lungExtent: new Uint8Array(rows * columns),
    lungShapes: [],
    frame,
    patientSex: r.chance(0.5) ? 'M' : 'F',
    laterality,
  };
}
