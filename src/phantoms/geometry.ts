// Patient coordinates -> pixels. Each anatomy is drawn in its own normalised patient coordinates (u to the image's
// right, v downwards, one unit = a body-size-dependent number of pixels) and placed in the image by a similarity
// transform; only outline points are transformed, never pixels, so the cost does not grow with the image size.

export type Point = readonly [x: number, y: number];

export interface Placement {
  /** Pixel position of the patient-coordinate origin. */
  centerX: number;
  centerY: number;
  /** Pixels per patient unit. */
  scale: number;
  /** In-plane rotation, radians, clockwise on the screen. */
  rotation: number;
}

export class Frame {
  private readonly cos: number;
  private readonly sin: number;

  constructor(readonly placement: Placement) {
    this.cos = Math.cos(placement.rotation);
    this.sin = Math.sin(placement.rotation);
  }

  /** Pixels per patient unit. */
  get scale(): number {
    return this.placement.scale;
  }

  toPixel(u: number, v: number): Point {
    const { centerX, centerY, scale } = this.placement;
    return [centerX + scale * (u * this.cos - v * this.sin), centerY + scale * (u * this.sin + v * this.cos)];
  }

  toPixels(points: readonly Point[]): Point[] {
    return points.map(([u, v]) => this.toPixel(u, v));
  }

  /** The patient coordinates of a pixel position (the inverse of toPixel). */
  toPatient(x: number, y: number): Point {
    const { centerX, centerY, scale } = this.placement;
    const dx = (x - centerX) / scale;
    const dy = (y - centerY) / scale;
    return [dx * this.cos + dy * this.sin, -dx * this.sin + dy * this.cos];
  }
}

/** `count` points of a parametric curve for t in [t0, t1], both ends included. */
export function sampleCurve(count: number, t0: number, t1: number, at: (t: number) => Point): Point[] {
  const out: Point[] = [];
  for (let i = 0; i < count; i++) out.push(at(t0 + ((t1 - t0) * i) / Math.max(1, count - 1)));
  return out;
}

/** An ellipse outline (patient coordinates) with `count` points. */
export function ellipsePoints(cu: number, cv: number, ru: number, rv: number, count = 48, angle = 0): Point[] {
  const c = Math.cos(angle);
  const s = Math.sin(angle);
  return sampleCurve(count, 0, 2 * Math.PI * (1 - 1 / count), (t) => {
    const x = ru * Math.cos(t);
    const y = rv * Math.sin(t);
    return [cu + x * c - y * s, cv + x * s + y * c];
  });
}

/**
 * The outline of a band of half-width `halfWidth(t)` around a polyline (t = 0 at its first point, 1 at its last):
 * left side forwards, right side backwards. Used for ribs, clavicles and tubes drawn as filled polygons.
 */
export function bandOutline(centerline: readonly Point[], halfWidth: (t: number) => number): Point[] {
  const n = centerline.length;
  const left: Point[] = [];
  const right: Point[] = [];
  for (let i = 0; i < n; i++) {
    const prev = centerline[Math.max(0, i - 1)] ?? [0, 0];
    const next = centerline[Math.min(n - 1, i + 1)] ?? [0, 0];
    const p = centerline[i] ?? [0, 0];
    const dx = next[0] - prev[0];
    const dy = next[1] - prev[1];
    const len = Math.hypot(dx, dy) || 1;
    const w = halfWidth(n > 1 ? i / (n - 1) : 0);
    left.push([p[0] - (dy / len) * w, p[1] + (dx / len) * w]);
    right.push([p[0] + (dy / len) * w, p[1] - (dx / len) * w]);
  }
  return [...left, ...right.reverse()];
}

export function clamp01(x: number): number {
  return x < 0 ? 0 : x > 1 ? 1 : x;
}

export function smoothstep(edge0: number, edge1: number, x: number): number {
  const t = clamp01((x - edge0) / (edge1 - edge0));
  return t * t * (3 - 2 * t);
}

export function lerp(a: number, b: number, t: number): number {
  return a + (b - a) * t;
}

/** A closed Catmull-Rom spline through `points`, `perSegment` points between each pair: smooth organ outlines. */
export function smoothClosed(points: readonly Point[], perSegment = 8): Point[] {
  const n = points.length;
  const out: Point[] = [];
  const at = (i: number): Point => points[((i % n) + n) % n] ?? [0, 0];
  for (let i = 0; i < n; i++) {
    const p0 = at(i - 1);
    const p1 = at(i);
    const p2 = at(i + 1);
    const p3 = at(i + 2);
    for (let k = 0; k < perSegment; k++) {
      const t = k / perSegment;
      const t2 = t * t;
      const t3 = t2 * t;
      const c = (a: number, b: number, cc: number, d: number): number =>
        0.5 * (2 * b + (-a + cc) * t + (2 * a - 5 * b + 4 * cc - d) * t2 + (-a + 3 * b - 3 * cc + d) * t3);
      out.push([c(p0[0], p1[0], p2[0], p3[0]), c(p0[1], p1[1], p2[1], p3[1])]);
    }
  }
  return out;
}

/** A rounded rectangle (superellipse of exponent 4) outline: vertebral bodies, carpal bones, teeth. */
export function roundedRectPoints(cu: number, cv: number, ru: number, rv: number, count = 32): Point[] {
  return sampleCurve(count, 0, 2 * Math.PI * (1 - 1 / count), (t) => {
    const c = Math.cos(t);
    const s = Math.sin(t);
    return [cu + ru * Math.sign(c) * Math.sqrt(Math.abs(c)), cv + rv * Math.sign(s) * Math.sqrt(Math.abs(s))];
  });
}
