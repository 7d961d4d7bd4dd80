// A left lateral chest radiograph (ViewPosition LL), patient facing the image's left: a deep thorax silhouette with
// raised arms over the upper chest, one superimposed lung field (two hemidiaphragms at slightly different heights),
// retrosternal clear space, the heart anterior and low, the thoracic spine posterior with its kyphosis, sternum,
// trachea, aortic arch, faint ribs and vascular markings. Patient units: 1 = half the chest's front-to-back depth.

import { LungLabel, type AnatomyRender, type LungShape } from './anatomy.js';
import {
  bandOutline,
  clamp01,
  Frame,
  roundedRectPoints,
  sampleCurve,
  smoothClosed,
  smoothstep,
  type Point,
} from './geometry.js';
import { addVesselTree } from './lung-vessels.js';
import {
  addEllipse,
  addScaled,
  addTube,
  blur,
  cloneField,
  createField,
  fillPolygon,
  Profile,
  thickness,
  valueNoise,
} from './raster.js';
import { createRandom, type Random } from './random.js';

export interface LateralChestOptions {
  rows: number;
  columns: number;
  patientSeed: number;
  seed: number;
}

interface LateralPatient {
  sex: 'M' | 'F';
  habitus: number;
  apexV: number;
  lungHeight: number;
  anterior: number;
  posterior: number;
  domeHeight: number;
  rightLift: number;
  heartSize: number;
  airDensity: number;
}

function drawPatient(r: Random): LateralPatient {
  return {
    sex: r.chance(0.5) ? 'M' : 'F',
    habitus: r.next(),
    apexV: -0.95 + r.uniform(-0.04, 0.04),
    lungHeight: r.uniform(1.55, 1.85),
    anterior: r.uniform(0.78, 0.86),
    posterior: r.uniform(0.66, 0.74),
    domeHeight: r.uniform(0.28, 0.4),
    rightLift: r.uniform(0.03, 0.09),
    heartSize: r.uniform(0.38, 0.48),
    airDensity: r.uniform(0.26, 0.32),
  };
}

/** The lung field of one hemithorax seen from the side (u: anterior -, posterior +). */
class LateralLung {
  readonly base: number;
  private readonly cap = 0.5;

  constructor(
    readonly p: LateralPatient,
    lift: number,
  ) {
    this.base = p.apexV + p.lungHeight - lift;
  }

  edges(v: number): { anterior: number; posterior: number } {
    const t = clamp01((v - this.p.apexV) / this.p.lungHeight);
    const a = -this.p.anterior * (0.85 + 0.15 * t);
    // The posterior border follows the spine's kyphosis.
    const b = this.p.posterior + 0.06 * Math.sin(Math.PI * t);
    const c = (a + b) / 2 + 0.08;
    const k =
      v >= this.p.apexV + this.cap ? 1 : Math.sqrt(clamp01(1 - ((this.p.apexV + this.cap - v) / this.cap) ** 2));
    const h = ((b - a) / 2) * k;
    return { anterior: c - h - 0.08 * k, posterior: c + h - 0.08 * k };
  }

  /** Hemidiaphragm height at u: deepest in the posterior costophrenic recess. */
  diaphragm(u: number): number {
    const { anterior, posterior } = this.edges(this.base);
    const vertex = anterior + 0.45 * (posterior - anterior);
    const x = u >= vertex ? (u - vertex) / (posterior - vertex) : (vertex - u) / (posterior - vertex);
    return this.base - this.p.domeHeight * (1 - Math.min(1, x * x));
  }

  outline(): Point[] {
    const { anterior, posterior } = this.edges(this.base);
    const back = sampleCurve(30, this.p.apexV, this.base, (v): Point => [this.edges(v).posterior, v]);
    const dome = sampleCurve(20, posterior, anterior, (u): Point => [u, this.diaphragm(u)]).slice(1);
    const front = sampleCurve(26, this.diaphragm(anterior), this.p.apexV, (v): Point => [
      this.edges(v).anterior,
      v,
    ]).slice(1, -1);
    return [...back, ...dome, ...front];
  }
}

function lungShape(g: LateralLung, frame: Frame): LungShape {
  const height = g.base - g.p.apexV;
  const mid = g.edges(g.p.apexV + height / 2);
  return {
    label: LungLabel.superimposed,
    // On a lateral film the oblique fissure is seen edge-on: a sharp posterior edge to the middle zone.
    lobes: [
      { name: 'upper', weight: (t) => 1 - smoothstep(0.34, 0.5, t) },
      { name: 'middle', weight: (t, q) => smoothstep(0.34, 0.5, t) * (q < 0.42 ? 1 : 0) },
      { name: 'lower', weight: (t, q) => smoothstep(0.34, 0.5, t) * (q >= 0.42 ? 1 : 0) },
    ],
    widthPx: ((mid.posterior - mid.anterior) / 2) * frame.scale,
    peripheralQ: [
      [0.03, 0.18],
      [0.78, 0.97],
    ],
    toPixel: (t, q) => {
      const v = g.p.apexV + t * height;
      const e = g.edges(v);
      return frame.toPixel(e.anterior + q * (e.posterior - e.anterior), v);
    },
    toLocal: (x, y) => {
      const [u, v] = frame.toPatient(x, y);
      const e = g.edges(v);
      return { t: (v - g.p.apexV) / height, q: (u - e.anterior) / Math.max(1e-6, e.posterior - e.anterior) };
    },
  };
}

export function renderLateralChest(options: LateralChestOptions): AnatomyRender {
  const { rows, columns } = options;
  const r = createRandom(options.patientSeed, 'anatomy', 'lateral');
  const p = drawPatient(r);
  const poseRandom = createRandom(options.seed, 'pose');
  const scale = columns * poseRandom.uniform(0.3, 0.36);
  const frame = new Frame({
    centerX: columns / 2 + columns * poseRandom.uniform(-0.04, 0.04),
    centerY: rows * poseRandom.uniform(0.12, 0.2) + 0.95 * scale,
    scale,
    rotation: (3 * Math.PI * poseRandom.normal()) / 180,
  });
  const density = createField(columns, rows);

  // Thorax and abdomen from the side, with the neck above; both arms raised in front of the upper chest.
  const front = -1.02 - 0.08 * p.habitus;
  const backU = 1.22 + 0.05 * p.habitus;
  const body: Point[] = smoothClosed(
    [
      [-0.45, -3],
      [-0.5, -1.45],
      [front + 0.1, -0.95],
      [front, -0.2],
      [front - 0.02, 0.7],
      [front - 0.06 - 0.1 * p.habitus, 1.6],
      [front - 0.06, 4],
      [backU - 0.05, 4],
      [backU, 1.2],
      [backU + 0.06, 0.0],
      [backU, -0.9],
      [0.55, -1.5],
      [0.45, -3],
    ],
    6,
  );
  addScaled(density, thickness(columns, rows, [frame.toPixels(body)], 0.3 * scale, 0.4), 0.56 + 0.1 * p.habitus);
  const arms: Point[] = [
    [-0.35, -0.55],
    [0.35, -0.75],
    [-0.2, -3],
    [-1.2, -3],
  ];
  const armField = createField(columns, rows);
  fillPolygon(armField, frame.toPixels(arms), 0.14);
  blur(armField, 0.08 * scale, 2);
  addScaled(density, armField, 1);
  for (const du of [0, 0.1]) {
    addTube(
      density,
      frame.toPixel(-0.05 + du, -0.7),
      frame.toPixel(-0.55 + du, -3),
      0.09 * scale,
      0.08 * scale,
      0.14,
      Profile.cortex,
    );
  }

  // Two hemithoraces' lung fields, each half the air, superimposed.
  const lungs = [new LateralLung(p, p.rightLift), new LateralLung(p, 0)];
  const heart = createField(columns, rows);
  const baseV = Math.max(...lungs.map((g) => g.base));
  const hs = p.heartSize;
  fillPolygon(
    heart,
    frame.toPixels(
      smoothClosed(
        [
          [-0.78, baseV - 0.25],
          [-0.72, baseV - 0.75],
          [-0.45, baseV - 0.35 - 2 * hs],
          [-0.1, baseV - 0.3 - 2 * hs],
          [0.05 + hs * 0.3, baseV - 0.6],
          [0.1 + hs * 0.3, baseV - 0.25],
          [-0.2, baseV - 0.1],
        ],
        6,
      ),
    ),
    1,
  );
  blur(heart, 0.012 * scale, 2);
  const labels = new Uint8Array(rows * columns);
  const extent = new Uint8Array(rows * columns);
  const air = createField(columns, rows);
  for (const g of lungs) {
    const mask = createField(columns, rows);
    fillPolygon(mask, frame.toPixels(g.outline()), 1);
    const depth = cloneField(mask);
    blur(depth, 0.18 * scale, 2);
    for (let i = 0; i < mask.data.length; i++) {
      const m = mask.data[i] ?? 0;
      if (m <= 0) continue;
      extent[i] = LungLabel.superimposed;
      air.data[i] = (air.data[i] ?? 0) + 0.5 * m * (0.5 + 0.5 * clamp01(((depth.data[i] ?? 0) - 0.5) * 2));
      if (m >= 0.5 && (heart.data[i] ?? 0) < 0.5) labels[i] = LungLabel.superimposed;
    }
  }
  blur(air, 0.006 * scale, 1);
  for (let i = 0; i < air.data.length; i++) {
    const h = heart.data[i] ?? 0;
    air.data[i] = (air.data[i] ?? 0) * (1 - 0.55 * h);
    density.data[i] = (density.data[i] ?? 0) + 0.04 * h;
  }

  const vessels = createField(columns, rows);
  const hilumV = p.apexV + 0.5 * p.lungHeight;
  addVesselTree(
    vessels,
    {
      hilum: frame.toPixel(0.05, hilumV),
      directions: [-Math.PI / 2, -Math.PI / 2 - 0.9, Math.PI, Math.PI / 2 + 0.6, Math.PI / 2 - 0.3, 0.3, -0.6].map(
        (d) => d + frame.placement.rotation,
      ),
      scale,
      length: 0.34,
      densityPerRadius: 2.2,
    },
    createRandom(options.patientSeed, 'vessels', 'lateral'),
  );

  // Spine (vertebral bodies and posterior elements), sternum, ribs.
  const bones = createField(columns, rows);
  for (let k = 0; k < 36; k++) {
    const v = -2.4 + k * 0.15;
    const u = p.posterior + 0.16 + 0.08 * Math.sin(Math.PI * clamp01((v - p.apexV) / p.lungHeight));
    fillPolygon(bones, frame.toPixels(roundedRectPoints(u, v, 0.12, 0.062, 28)), 0.1, 'add');
    fillPolygon(bones, frame.toPixels(roundedRectPoints(u, v, 0.09, 0.042, 28)), -0.04, 'add');
    const [px, py] = frame.toPixel(u + 0.22, v + 0.03);
    addEllipse(bones, px, py, 0.1 * scale, 0.045 * scale, 0.4, 0.05, Profile.cylinder);
  }
  const sternum = sampleCurve(12, 0, 1, (t): Point => [
    front + 0.07 + 0.04 * Math.sin(Math.PI * t),
    p.apexV + 0.05 + t * 1.05,
  ]);
  fillPolygon(bones, frame.toPixels(bandOutline(sternum, () => 0.045)), 0.07, 'add');
  for (let k = 0; k < 9; k++) {
    const v0 = p.apexV + 0.05 + k * 0.16;
    for (const shift of [0, 0.05]) {
      const rib = sampleCurve(14, 0, 1, (t): Point => [p.posterior + 0.15 - t * 1.5, v0 + shift + 0.5 * t * t]);
      fillPolygon(bones, frame.toPixels(bandOutline(rib, () => 0.03)), 0.018, 'add');
    }
  }
  blur(bones, 0.004 * scale, 1);
  addScaled(density, bones, 1);

  const aeration = createField(columns, rows);
  for (let i = 0; i < density.data.length; i++) {
    const a = air.data[i] ?? 0;
    aeration.data[i] = p.airDensity * a - (vessels.data[i] ?? 0) * Math.min(1, a * 1.6);
    density.data[i] = (density.data[i] ?? 0) - (aeration.data[i] ?? 0);
  }

  // Trachea, tilted backwards on its way down; the aortic arch above the heart.
  const carina = frame.toPixel(0.12, p.apexV + 0.5);
  addTube(density, frame.toPixel(-0.1, p.apexV - 1.2), carina, 0.075 * scale, 0.065 * scale, -0.1, Profile.cylinder);
  const arch = sampleCurve(16, 0, 1, (t): Point => [
    -0.3 + 0.9 * t,
    p.apexV + 0.45 - 0.25 * Math.sin(Math.PI * Math.min(1, t * 1.4)),
  ]);
  const aorta = createField(columns, rows);
  fillPolygon(aorta, frame.toPixels(bandOutline([...arch, [0.62, baseV - 0.2]], () => 0.09)), 0.05);
  blur(aorta, 0.02 * scale, 1);
  addScaled(density, aorta, 1);

  // Abdomen below the diaphragm; gastric bubble under the left (lower) dome.
  const abdomen = createField(columns, rows);
  const lower = lungs[1] as LateralLung;
  const dome = sampleCurve(20, 1.3, -1.3, (u): Point => [
    u,
    lower.diaphragm(Math.max(lower.edges(lower.base).anterior, Math.min(lower.edges(lower.base).posterior, u))),
  ]);
  fillPolygon(abdomen, frame.toPixels([...dome, [-1.3, 6], [1.3, 6]]), 0.08);
  blur(abdomen, 0.02 * scale, 2);
  addScaled(density, abdomen, 1);
  if (r.chance(0.6)) {
    const [gx, gy] = frame.toPixel(-0.35, lower.diaphragm(-0.35) + 0.12);
    addEllipse(density, gx, gy, 0.16 * scale, 0.07 * scale, frame.placement.rotation, -0.08, Profile.cylinder);
  }

  const slow = valueNoise(columns, rows, 0.5 * scale, r.next);
  for (let i = 0; i < density.data.length; i++)
    density.data[i] = Math.max(0, (density.data[i] ?? 0) + 0.05 * ((slow[i] ?? 0) - 0.5));

  return {
    density,
    aeration,
    lungs: labels,
    lungExtent: extent,
    lungShapes: [lungShape(lower, frame)],
    frame,
    patientSex: p.sex,
  };
}
