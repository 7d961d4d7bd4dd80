// An AP skull radiograph (BodyPartExamined SKULL): the calvarium as a bony shell (bright where the beam runs along
// it), orbits, nasal cavity, maxillary sinuses, petrous ridges, mandible and teeth, the upper cervical spine. It
// exists so that routing can be tested with an image that is plainly not a chest.

import type { AnatomyRender } from './anatomy.js';
import { bandOutline, ellipsePoints, Frame, roundedRectPoints, sampleCurve, type Point } from './geometry.js';
import { addEllipse, blur, createField, fillPolygon, Profile } from './raster.js';
import { createRandom } from './random.js';

export interface SkullOptions {
  rows: number;
  columns: number;
  patientSeed: number;
  seed: number;
}

export function renderSkull(options: SkullOptions): AnatomyRender {
  const { rows, columns } = options;
  const r = createRandom(options.patientSeed, 'anatomy', 'skull');
  const pose = createRandom(options.seed, 'pose');
  const scale = Math.min(rows, columns) * pose.uniform(0.33, 0.38);
  const frame = new Frame({
    centerX: columns / 2 + columns * pose.uniform(-0.04, 0.04),
    centerY: rows * 0.45 + rows * pose.uniform(-0.03, 0.03),
    scale,
    rotation: (4 * Math.PI * pose.normal()) / 180,
  });
  const density = createField(columns, rows);
  const [cx, cy] = frame.toPixel(0, 0);
  const rot = frame.placement.rotation;
  const width = r.uniform(0.95, 1.05);
  const height = r.uniform(1.12, 1.25);
  const shell = r.uniform(0.06, 0.09);

  // Scalp, brain and the calvarium: the difference of two solid ellipsoids is a shell whose projection peaks at the
  // inner table, the way the skull's outline shows on a film.
  addEllipse(density, cx, cy, (width + 0.06) * scale, (height + 0.06) * scale, rot, 0.12, Profile.cylinder);
  addEllipse(density, cx, cy, width * scale, height * scale, rot, 0.9, Profile.cylinder);
  addEllipse(
    density,
    cx,
    cy,
    (width - shell) * scale,
    (height - shell) * scale,
    rot,
    -0.9 * (1 - shell / width) + 0.3,
    Profile.cylinder,
  );

  const bone = createField(columns, rows);
  const px = (points: readonly Point[]): Point[] => frame.toPixels(points);
  for (const s of [-1, 1]) {
    // Orbit rims, and the petrous ridges running out and down from the skull base.
    const [ox, oy] = frame.toPixel(s * 0.36, 0.3);
    addEllipse(bone, ox, oy, 0.21 * scale, 0.18 * scale, rot, 0.12, Profile.cortex);
    addEllipse(density, ox, oy, 0.16 * scale, 0.14 * scale, rot, -0.06, Profile.cylinder);
    const ridge = sampleCurve(10, 0, 1, (t): Point => [s * (0.18 + 0.6 * t), 0.28 + 0.12 * t * t]);
    fillPolygon(bone, px(bandOutline(ridge, (t) => 0.05 - 0.02 * t)), 0.12, 'add');
    const [mx, my] = frame.toPixel(s * 0.3, 0.66);
    addEllipse(density, mx, my, 0.16 * scale, 0.13 * scale, rot, -0.07, Profile.cylinder);
  }
  // Nasal cavity.
  fillPolygon(
    density,
    px([
      [0, 0.42],
      [0.12, 0.8],
      [-0.12, 0.8],
    ]),
    -0.06,
    'add',
  );
  // Mandible and teeth.
  const jaw = sampleCurve(24, -1, 1, (t): Point => [
    0.78 * Math.sin((t * Math.PI) / 2.2),
    0.6 + 0.65 * Math.cos((t * Math.PI) / 2.2) ** 0.8,
  ]);
  fillPolygon(bone, px(bandOutline(jaw, () => 0.065)), 0.25, 'add');
  for (const row of [0.9, 1.02]) {
    for (let k = -6; k <= 6; k++) {
      const u = k * 0.055;
      fillPolygon(bone, px(roundedRectPoints(u, row + 0.03 * (u * u) * 4, 0.022, 0.05, 16)), 0.28, 'add');
    }
  }
  // Upper cervical spine below the skull base.
  for (let k = 0; k < 4; k++) fillPolygon(bone, px(roundedRectPoints(0, 1.3 + k * 0.2, 0.14, 0.07, 24)), 0.12, 'add');
  fillPolygon(density, px(ellipsePoints(0, 1.6, 0.35, 0.6, 32)), 0.15, 'add');
  blur(bone, 0.004 * scale, 1);
  for (let i = 0; i < density.data.length; i++)
    density.data[i] = Math.max(0, (density.data[i] ?? 0) + (bone.data[i] ?? 0));
  return {
    density,
    aeration: createField(columns, rows),
    lungs: new Uint8Array(rows * columns),
    lungExtent: new Uint8Array(rows * columns),
    lungShapes: [],
    frame,
    patientSex: r.chance(0.5) ? 'M' : 'F',
  };
}
