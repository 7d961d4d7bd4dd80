// A frontal (PA or AP) chest radiograph's anatomy as a density image: body and arms, two lung fields with domed
// hemidiaphragms and sharp costophrenic angles, heart and mediastinum, trachea and main bronchi, spine, posterior and
// anterior ribs, clavicles, scapulae, humeral heads, vascular markings, breast shadows, gastric bubble and, on
// portable AP films, ECG electrodes. Everything is drawn in patient units (1 = half the thorax width) and placed
// with a pose (size, position, in-plane rotation, axial rotation), so the same patient can be imaged twice.
//
// The patient (anatomy) comes from `patientSeed`, the pose from `seed`: images of one study share the patient.

import { LungLabel, type AnatomyRender, type Lobe, type LungShape } from './anatomy.js';
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
  type Field,
} from './raster.js';
import { createRandom, type Random } from './random.js';

export interface FrontalChestOptions {
  rows: number;
  columns: number;
  view: 'PA' | 'AP';
  patientSeed: number;
  seed: number;
}

/** Patient parameters, patient units. */
interface Patient {
  sex: 'M' | 'F';
  /** 0 (thin) .. 1 (obese): soft tissue density and breast size. */
  habitus: number;
  apexV: number;
  /** Apex to costophrenic angle. */
  lungHeight: number;
  lateral: number;
  medial: number;
  domeHeight: number;
  /** How much higher the right hemidiaphragm is. */
  rightLift: number;
  /** Half the heart width over half the thorax width (the cardiothoracic ratio). */
  heartRatio: number;
  heartShift: number;
  heartTilt: number;
  ribStep: number;
  gastricBubble: boolean;
  airDensity: number;
}

interface Pose {
  frame: Frame;
  /** Axial rotation, -1 .. 1: one lung projects wider, the spine shifts. */
  axial: number;
  ap: boolean;
}

function drawPatient(r: Random, ap: boolean): Patient {
  const sex = r.chance(0.5) ? 'M' : 'F';
  return {
    sex,
    habitus: r.next(),
    apexV: -0.95 + r.uniform(-0.04, 0.04),
    // Portable films are often taken in poor inspiration.
    lungHeight: r.uniform(1.45, 1.75) * (ap ? r.uniform(0.86, 0.96) : 1),
    lateral: r.uniform(0.84, 0.92),
    medial: r.uniform(0.1, 0.14),
    domeHeight: r.uniform(0.14, 0.26),
    rightLift: r.uniform(0.03, 0.11),
    // AP magnifies the heart (it is further from the detector).
    heartRatio: r.uniform(0.4, 0.5) * (ap ? 1.12 : 1),
    heartShift: r.uniform(0.1, 0.18),
    heartTilt: r.uniform(0.35, 0.6),
    ribStep: r.uniform(0.15, 0.17),
    gastricBubble: r.chance(0.65),
    airDensity: r.uniform(0.3, 0.38),
  };
}

function drawPose(r: Random, rows: number, columns: number, ap: boolean): Pose {
  const scale = columns * r.uniform(0.34, 0.42) * (ap ? 1.04 : 1);
  const apexY = rows * r.uniform(0.1, 0.2);
  const placement = {
    centerX: columns / 2 + columns * r.uniform(-0.04, 0.04),
    centerY: apexY + 0.95 * scale,
    scale,
    rotation: ((ap ? 4 : 2) * Math.PI * r.normal()) / 180,
  };
  return { frame: new Frame(placement), axial: Math.max(-1, Math.min(1, r.normal() * (ap ? 0.6 : 0.4))), ap };
}

/** The lung of side s (-1: patient's right, image left; +1: left) as analytic edges in |u|. */
class LungGeometry {
  readonly base: number;
  readonly lateralMax: number;
  readonly domeHeight: number;
  private readonly capHeight = 0.42;

  constructor(
    readonly side: -1 | 1,
    readonly p: Patient,
    axial: number,
  ) {
    this.base = p.apexV + p.lungHeight + (side === 1 ? 0.03 : 0);
    this.lateralMax = p.lateral * (1 + side * axial * 0.06);
    this.domeHeight = p.domeHeight + (side === -1 ? p.rightLift : 0);
  }

  private rawLateral(v: number): number {
    return this.lateralMax * (0.8 + 0.2 * smoothstep(this.p.apexV, this.p.apexV + 0.8 * this.p.lungHeight, v));
  }

  private rawMedial(v: number): number {
    return this.p.medial + 0.04 * clamp01((v - this.p.apexV) / this.p.lungHeight);
  }

  /** Lung edges in |u| at height v, with the rounded apex. */
  edges(v: number): { medial: number; lateral: number } {
    const lat = this.rawLateral(v);
    const med = this.rawMedial(v);
    const c = (lat + med) / 2 - 0.04;
    const k =
      v >= this.p.apexV + this.capHeight
        ? 1
        : Math.sqrt(clamp01(1 - ((this.p.apexV + this.capHeight - v) / this.capHeight) ** 2));
    const h = ((lat - med) / 2) * k;
    return { medial: Math.max(0.02, c - h), lateral: c + h + 0.04 * k };
  }

  /** Height of the hemidiaphragm at |u| (the lowest point is the costophrenic angle, laterally). */
  diaphragm(uAbs: number): number {
    const { medial, lateral } = this.edges(this.base);
    const vertex = medial + 0.45 * (lateral - medial);
    const x = (uAbs - vertex) / (lateral - vertex);
    return this.base - this.domeHeight * (1 - Math.min(1, x * x));
  }

  /** Outline in patient coordinates: lateral edge down, diaphragm medially, medial edge up. */
  outline(): Point[] {
    const s = this.side;
    const { medial: medBase, lateral: latBase } = this.edges(this.base);
    const medialFoot = this.diaphragm(medBase);
    const lateralEdge = sampleCurve(30, this.p.apexV, this.base, (v) => [s * this.edges(v).lateral, v]);
    const dome = sampleCurve(18, latBase, medBase, (u) => [s * u, this.diaphragm(u)]).slice(1);
    const medialEdge = sampleCurve(26, medialFoot, this.p.apexV, (v) => [s * this.edges(v).medial, v]).slice(1, -1);
    return [...lateralEdge, ...dome, ...medialEdge];
  }

  lobes(): Lobe[] {
    const below =
      (edge: number, ramp: number) =>
      (t: number): number =>
        1 - smoothstep(edge - ramp / 2, edge + ramp / 2, t);
    const above =
      (edge: number, ramp: number) =>
      (t: number): number =>
        smoothstep(edge - ramp / 2, edge + ramp / 2, t);
    if (this.side === -1) {
      // PA projection of the right lobes: the minor fissure (seen edge-on: a sharp line) bounds the upper lobe; the
      // middle lobe lies medially against the right heart border; the lower lobe projects over the lateral and
      // basal lung, overlapping the others (no visible edge).
      // The fissure bows gently and is antialiased over about a pixel or two (t +- 0.006).
      const minor = (q: number): number => 0.42 + 0.03 * Math.sin(Math.PI * clamp01(q)) - 0.02 * q;
      const upper = (t: number, q: number): number => 1 - smoothstep(minor(q) - 0.006, minor(q) + 0.006, t);
      return [
        { name: 'RUL', weight: upper },
        { name: 'RML', weight: (t, q) => (1 - upper(t, q)) * (1 - smoothstep(0.55, 0.8, q)) * below(0.85, 0.15)(t) },
        { name: 'RLL', weight: (t, q) => above(0.45, 0.2)(t) * Math.max(smoothstep(0.5, 0.7, q), above(0.85, 0.1)(t)) },
      ];
    }
    return [
      { name: 'LUL', weight: below(0.58, 0.2) },
      { name: 'LLL', weight: above(0.58, 0.2) },
    ];
  }
}

function lungShape(g: LungGeometry, frame: Frame, label: 1 | 2): LungShape {
  const p = g.p;
  const height = g.base - p.apexV;
  const mid = g.edges(p.apexV + height / 2);
  return {
    label,
    lobes: g.lobes(),
    widthPx: (mid.lateral - mid.medial) * frame.scale,
    peripheralQ: [[0.7, 0.97]],
    toPixel: (t, q) => {
      const v = p.apexV + t * height;
      const e = g.edges(v);
      return frame.toPixel(g.side * (e.medial + q * (e.lateral - e.medial)), v);
    },
    toLocal: (x, y) => {
      const [u, v] = frame.toPatient(x, y);
      const e = g.edges(v);
      return { t: (v - p.apexV) / height, q: (g.side * u - e.medial) / Math.max(1e-6, e.lateral - e.medial) };
    },
  };
}

/** Torso (neck, shoulders, chest wall, abdomen) and the two arms, patient coordinates, image-left half mirrored. */
function bodyOutlines(p: Patient, r: Random, ap: boolean): { torso: Point[]; arms: Point[][] } {
  const neck = 0.27 + 0.06 * p.habitus;
  const shoulder = -1.25 + r.uniform(-0.05, 0.05);
  const halfTorso: Point[] = [
    [neck, -4],
    [neck + 0.02, shoulder - 0.2],
    [0.55, shoulder - 0.07],
    [0.85, shoulder + 0.02],
    [1.05, shoulder + 0.14],
    [1.04, -0.6],
    [1.03, 0.3],
    [1.0, 1.2],
    [0.98, 5],
  ];
  const torso = [
    ...halfTorso.map(([u, v]): Point => [u, v]),
    ...halfTorso
      .slice()
      .reverse()
      .map(([u, v]): Point => [-u, v]),
  ];
  // Arms hang beside the chest on AP films; on PA films the shoulders are rolled forward and the arms sit further out.
  const gap = ap ? r.uniform(0.0, 0.05) : r.uniform(0.04, 0.14);
  const arm = (s: number): Point[] => [
    [s * 1.0, shoulder + 0.1],
    [s * 1.25, shoulder + 0.16],
    [s * (1.42 + gap), shoulder + 0.35],
    [s * (1.48 + gap), 0.4],
    [s * (1.46 + gap), 5],
    [s * (1.06 + gap), 5],
    [s * (1.04 + gap), -0.3],
  ];
  return { torso, arms: [arm(-1), arm(1)] };
}

/**
 * A bone drawn as a filled band with a hollow (cortex brighter than medulla), into `field`. The hollow is left out
 * where it would be under two pixels wide: it could not be seen, and ribs are most of the polygons drawn.
 */
function addBoneBand(
  field: Field,
  frame: Frame,
  centerline: readonly Point[],
  halfWidth: (t: number) => number,
  density: number,
): void {
  fillPolygon(field, frame.toPixels(bandOutline(centerline, halfWidth)), density, 'add');
  if (halfWidth(0.5) * 0.55 * frame.scale < 1) return;
  fillPolygon(field, frame.toPixels(bandOutline(centerline, (t) => halfWidth(t) * 0.55)), -density * 0.3, 'add');
}

/** Points for a curve `lengthUnits` long: about one per 6 pixels, 5 to 18. */
function curvePoints(frame: Frame, lengthUnits: number): number {
  return Math.max(5, Math.min(18, Math.ceil((lengthUnits * frame.scale) / 6)));
}

function ribs(field: Field, frame: Frame, p: Patient, lungs: readonly LungGeometry[], r: Random): void {
  for (const g of lungs) {
    const s = g.side;
    for (let k = 0; k < 10; k++) {
      const v0 = p.apexV - 0.1 + k * p.ribStep + r.uniform(-0.015, 0.015);
      const lat = g.edges(v0 + 0.3).lateral + 0.06;
      const droop = 0.18 + 0.03 * k;
      // Posterior rib: leaves the spine, rises a little, then sweeps down along the chest wall.
      const posterior = sampleCurve(curvePoints(frame, lat), 0, 1, (t): Point => [
        s * (0.07 + t * (lat - 0.07)),
        v0 - 0.09 * Math.sin(Math.PI * t * 0.85) + droop * t * t,
      ]);
      const hw = 0.034 + (0.004 * Math.min(k, 5)) / 5;
      addBoneBand(field, frame, posterior, (t) => hw * (1.15 - 0.25 * t), 0.075);
      // Anterior rib: from the lateral end of the posterior rib, downwards and medially to the costal cartilage.
      const end = posterior[posterior.length - 1] ?? [0, 0];
      const drop = 0.32 + 0.02 * k;
      const medialEnd = 0.3 + 0.02 * k;
      const anterior = sampleCurve(curvePoints(frame, 0.7), 0, 1, (t): Point => [
        end[0] - s * t * (Math.abs(end[0]) - medialEnd),
        end[1] + drop * Math.sin((t * Math.PI) / 2),
      ]);
      addBoneBand(field, frame, anterior, () => hw * 1.25, 0.035);
    }
  }
}

function spine(field: Field, frame: Frame, axial: number): void {
  const u0 = 0.045 * axial;
  for (let k = 0; k < 40; k++) {
    const v = -2.6 + k * 0.145;
    const body = roundedRectPoints(u0, v, 0.105 + 0.0015 * k, 0.058, frame.scale > 300 ? 32 : 16);
    fillPolygon(field, frame.toPixels(body), 0.03, 'add');
    const pedicle = 0.065;
    for (const s of [-1, 1]) {
      const [x, y] = frame.toPixel(u0 + s * pedicle, v - 0.01);
      addEllipse(field, x, y, 0.022 * frame.scale, 0.03 * frame.scale, 0, 0.035, Profile.cortex);
    }
    const [sx, sy] = frame.toPixel(u0 - 0.6 * 0.045 * axial, v + 0.05);
    addEllipse(field, sx, sy, 0.018 * frame.scale, 0.04 * frame.scale, 0, 0.025, Profile.cylinder);
  }
}

function shoulderGirdle(field: Field, frame: Frame, p: Patient, pose: Pose, r: Random): void {
  for (const s of [-1, 1] as const) {
    // Clavicles: S-shaped, over the apices on PA; higher and more horizontal on AP (the beam is angled).
    const lift = pose.ap ? -0.14 : 0;
    const vMed = p.apexV - 0.02 + lift + r.uniform(-0.03, 0.03);
    const vLat = p.apexV - (pose.ap ? 0.12 : 0.24) + lift;
    const clavicle = sampleCurve(18, 0, 1, (t): Point => [
      s * (0.12 + 0.92 * t),
      vMed + (vLat - vMed) * t + 0.05 * Math.sin(2 * Math.PI * t),
    ]);
    // Rounded ends: the sternal end is a knob, the acromial end tapers.
    addBoneBand(
      field,
      frame,
      clavicle,
      (t) => (0.05 - 0.012 * t) * Math.sqrt(Math.min(1, Math.sin(Math.PI * t) * 4)),
      0.17,
    );
    // Scapula: a thin blade, seen as a soft-edged shadow; on PA the shoulders are rolled forward and the blades
    // clear the lungs, on AP they overlap the upper lateral lung.
    const inward = pose.ap ? 0.2 : 0;
    const [bx, by] = frame.toPixel(s * (1.0 - inward * 0.7), p.apexV + 0.25);
    const tilt = frame.placement.rotation + s * 0.25;
    addEllipse(field, bx, by, 0.2 * frame.scale, 0.55 * frame.scale, tilt, 0.05, Profile.soft);
    // Humeral head and shaft.
    const [hx, hy] = frame.toPixel(s * 1.18, p.apexV - 0.22);
    addEllipse(field, hx, hy, 0.17 * frame.scale, 0.17 * frame.scale, 0, 0.2, Profile.cortex);
    addTube(
      field,
      frame.toPixel(s * 1.2, p.apexV - 0.1),
      frame.toPixel(s * 1.27, 3),
      0.1 * frame.scale,
      0.085 * frame.scale,
      0.2,
      Profile.cortex,
    );
  }
}

/**
 * The heart and mediastinum as one silhouette field (0..1), for density and to hide the lung behind it: SVC and
 * right atrium on the right; aortic knob, pulmonary trunk and left ventricle down to the apex on the left.
 */
function heartSilhouette(
  width: number,
  height: number,
  frame: Frame,
  p: Patient,
  lungs: readonly LungGeometry[],
): Field {
  const f = createField(width, height);
  const floor = Math.min(...lungs.map((g) => g.base - g.domeHeight * 0.45));
  const left = p.heartRatio * 1.25 + p.heartShift * 0.3;
  const right = p.heartRatio * 0.75 - p.heartShift * 0.3;
  const top = p.apexV - 0.9;
  const cv = floor - 0.5;
  const outline: Point[] = [
    [-0.13, top],
    [-0.14, cv - 0.55],
    [-0.16, cv - 0.25],
    [-right, cv + 0.08],
    [-right * 0.92, floor - 0.08],
    [-right * 0.7, floor + 0.06],
    [left * 0.5, floor + 0.1],
    [left * 0.96, floor - 0.02],
    [left, floor - 0.16 - p.heartTilt * 0.1],
    [left * 0.88, cv + 0.05],
    [0.3, cv - 0.3],
    [0.26, cv - 0.45],
    [0.3, cv - 0.6],
    [0.24, cv - 0.74],
    [0.13, top],
  ];
  fillPolygon(f, frame.toPixels(smoothClosed(outline, 6)), 1);
  blur(f, 0.01 * frame.scale, 2);
  return f;
}

export function renderFrontalChest(options: FrontalChestOptions): AnatomyRender {
  const { rows, columns } = options;
  const ap = options.view === 'AP';
  const anatomyRandom = createRandom(options.patientSeed, 'anatomy', 'frontal');
  const p = drawPatient(anatomyRandom, ap);
  const pose = drawPose(createRandom(options.seed, 'pose'), rows, columns, ap);
  const frame = pose.frame;
  const scale = frame.scale;
  const density = createField(columns, rows);

  // Soft tissue.
  const outlines = bodyOutlines(p, anatomyRandom, ap);
  const softDensity = 0.48 + 0.12 * p.habitus;
  addScaled(density, thickness(columns, rows, [frame.toPixels(outlines.torso)], 0.32 * scale, 0.35), softDensity);
  addScaled(
    density,
    thickness(
      columns,
      rows,
      outlines.arms.map((arm) => frame.toPixels(arm)),
      0.16 * scale,
      0.35,
    ),
    softDensity * 0.85,
  );

  // Lungs: a hard label mask (ground truth) and an air field thinning the soft tissue, deepest mid-lung. Both lungs
  // share one coverage field; a second one filled with the label value tells them apart (label x coverage).
  const lungs = [new LungGeometry(-1, p, pose.axial), new LungGeometry(1, p, pose.axial)];
  const lungMask = createField(columns, rows);
  const lungLabel = createField(columns, rows);
  for (const g of lungs) {
    const outline = frame.toPixels(g.outline());
    fillPolygon(lungMask, outline, 1);
    fillPolygon(lungLabel, outline, g.side === -1 ? LungLabel.right : LungLabel.left);
  }
  const depth = cloneField(lungMask);
  blur(depth, 0.16 * scale, 2);
  const heart = heartSilhouette(columns, rows, frame, p, lungs);
  const labels = new Uint8Array(rows * columns);
  const extent = new Uint8Array(rows * columns);
  const air = createField(columns, rows);
  for (let i = 0; i < air.data.length; i++) {
    const m = lungMask.data[i] ?? 0;
    if (m <= 0) continue;
    extent[i] = Math.round((lungLabel.data[i] ?? 0) / m);
    const t = clamp01(((depth.data[i] ?? 0) - 0.5) * 2);
    // t (2 - t): the lung is thickest well inside its outline, thin at the edges.
    air.data[i] = m * (0.55 + 0.45 * t * (2 - t));
    if (m >= 0.5 && (heart.data[i] ?? 0) < 0.5) labels[i] = Math.round((lungLabel.data[i] ?? 0) / m);
  }
  blur(air, 0.006 * scale, 1);

  // Heart and mediastinum project as a dense, round-edged silhouette, hiding most of the retrocardiac lung.
  const heartDepth = cloneField(heart);
  blur(heartDepth, 0.12 * scale, 2);
  for (let i = 0; i < heart.data.length; i++) {
    const h = heart.data[i] ?? 0;
    if (h <= 0) continue;
    air.data[i] = (air.data[i] ?? 0) * (1 - 0.8 * h);
    density.data[i] = (density.data[i] ?? 0) + 0.1 * h + 0.08 * h * clamp01(((heartDepth.data[i] ?? 0) - 0.3) * 1.6);
  }

  // Vascular markings, visible only against lung air.
  const vessels = createField(columns, rows);
  const vesselRandom = createRandom(options.patientSeed, 'vessels');
  for (const g of lungs) {
    const s = g.side;
    const hilumV = p.apexV + 0.45 * p.lungHeight;
    const lateral = ((1 - s) / 2) * Math.PI;
    addVesselTree(
      vessels,
      {
        hilum: frame.toPixel(s * (g.edges(hilumV).medial + 0.1), hilumV),
        directions: [
          -Math.PI / 2 + s * 0.45,
          -Math.PI / 2 + s * 1.0,
          lateral,
          Math.PI / 2 - s * 1.0,
          Math.PI / 2 - s * 0.45,
        ].map((d) => d + frame.placement.rotation),
        scale,
        length: 0.34,
        densityPerRadius: 2.2,
      },
      vesselRandom,
    );
  }

  // Ribs stand out against lung; over the mediastinum and the abdomen they are barely seen.
  const ribField = createField(columns, rows);
  ribs(ribField, frame, p, lungs, anatomyRandom);
  blur(ribField, 0.004 * scale, 1);
  const aeration = createField(columns, rows);
  for (let i = 0; i < density.data.length; i++) {
    const a = air.data[i] ?? 0;
    const e = a > 0 ? p.airDensity * a - (vessels.data[i] ?? 0) * Math.min(1, a * 1.6) : 0;
    aeration.data[i] = e;
    density.data[i] = (density.data[i] ?? 0) - e + (ribField.data[i] ?? 0) * (0.3 + 0.7 * Math.min(1, a * 1.5));
  }
  spine(density, frame, pose.axial);
  shoulderGirdle(density, frame, p, pose, anatomyRandom);

  // Trachea and main bronchi (air columns over the mediastinum).
  const carinaV = p.apexV + 0.42;
  const carina = frame.toPixel(0.02, carinaV);
  addTube(density, frame.toPixel(0.0, p.apexV - 1.2), carina, 0.055 * scale, 0.05 * scale, -0.13, Profile.cylinder);
  addTube(
    density,
    frame.toPixel(-0.03, carinaV + 0.04),
    frame.toPixel(-0.24, carinaV + 0.18),
    0.035 * scale,
    0.028 * scale,
    -0.06,
    Profile.cylinder,
  );
  addTube(
    density,
    frame.toPixel(0.06, carinaV + 0.04),
    frame.toPixel(0.24, carinaV + 0.25),
    0.032 * scale,
    0.026 * scale,
    -0.06,
    Profile.cylinder,
  );

  // Below the diaphragm: liver, spleen and bowel are denser than the chest wall alone, and merge with the heart.
  const abdomen = createField(columns, rows);
  const [rightLung, leftLung] = lungs as [LungGeometry, LungGeometry];
  const rightDome = sampleCurve(16, 1.2, rightLung.edges(rightLung.base).medial, (u): Point => [
    -u,
    rightLung.diaphragm(u),
  ]);
  const leftDome = sampleCurve(16, leftLung.edges(leftLung.base).medial, 1.2, (u): Point => [u, leftLung.diaphragm(u)]);
  fillPolygon(abdomen, frame.toPixels([...rightDome, ...leftDome, [1.2, 6], [-1.2, 6]]), 0.08);
  // A wide blur: the extra density must not draw a line through the chest wall beside the costophrenic angles.
  blur(abdomen, 0.05 * scale, 2);
  addScaled(density, abdomen, 1);
  if (p.gastricBubble) {
    const [gx, gy] = frame.toPixel(0.5, leftLung.base - leftLung.domeHeight + 0.16);
    addEllipse(density, gx, gy, 0.15 * scale, 0.075 * scale, frame.placement.rotation, -0.1, Profile.cylinder);
  }
  if (p.sex === 'F') {
    const size = 0.3 + 0.25 * p.habitus;
    for (const s of [-1, 1]) {
      const [bx, by] = frame.toPixel(s * 0.55, p.apexV + p.lungHeight - 0.25);
      addEllipse(
        density,
        bx,
        by,
        (size + 0.12) * scale,
        size * scale,
        frame.placement.rotation,
        0.06,
        Profile.cylinder,
      );
    }
  }
  if (pose.ap) addElectrodes(density, frame, createRandom(options.seed, 'devices'));

  // Slow variations (patient inhomogeneity, processing) so that no two lungs have the same mean.
  const slow = valueNoise(columns, rows, 0.5 * scale, anatomyRandom.next);
  for (let i = 0; i < density.data.length; i++)
    density.data[i] = Math.max(0, (density.data[i] ?? 0) + 0.05 * ((slow[i] ?? 0) - 0.5));

  return {
    density,
    aeration,
    lungs: labels,
    lungExtent: extent,
    lungShapes: [lungShape(rightLung, frame, LungLabel.right), lungShape(leftLung, frame, LungLabel.left)],
    frame,
    patientSex: p.sex,
  };
}

/** ECG electrodes (bright rings with a snap) and their leads, as seen on portable films; unrelated to the class. */
function addElectrodes(density: Field, frame: Frame, r: Random): void {
  if (!r.chance(0.5)) return;
  const count = r.int(2, 4);
  for (let k = 0; k < count; k++) {
    const u = r.uniform(-0.9, 0.9);
    const v = r.uniform(-1.0, 0.7);
    const [x, y] = frame.toPixel(u, v);
    const rad = 0.045 * frame.scale;
    addEllipse(density, x, y, rad, rad, 0, 0.12, Profile.cortex);
    addEllipse(density, x, y, rad * 0.3, rad * 0.3, 0, 0.3, Profile.cylinder);
    const end = frame.toPixel(u + r.uniform(-0.5, 0.5), -1.6);
    addTube(
      density,
      [x, y],
      end,
      Math.max(0.6, 0.008 * frame.scale),
      Math.max(0.6, 0.008 * frame.scale),
      0.2,
      Profile.cylinder,
    );
  }
}
