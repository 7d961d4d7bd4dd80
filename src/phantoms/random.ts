// Seeded randomness for the phantoms. Every image draws from several independent named streams (anatomy, findings,
// pose, exposure, noise, markers) so that changing one aspect of a phantom, e.g. rendering it without its finding,
// leaves every other aspect bit for bit the same. No Math.random anywhere: the same seed gives the same bytes.

/** 32-bit FNV-1a over the UTF-16 code units of a string (ASCII labels only in practice). */
function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** A 32-bit seed for a named sub-stream of `seed`; `parts` are joined, so (1, 'a', 2) and (1, 'a2') differ. */
export function deriveSeed(seed: number, ...parts: Array<string | number>): number {
  return fnv1a([String(seed >>> 0), ...parts.map(String)].join('|'));
}

export interface Random {
  /** Uniform in [0, 1). */
  next(): number;
  uniform(min: number, max: number): number;
  /** Integer in [min, max], both included. */
  int(min: number, max: number): number;
  chance(probability: number): boolean;
  /** Standard normal (Box-Muller). */
  normal(): number;
  pick<T>(items: readonly T[]): T;
}

/** mulberry32: tiny, fast and good enough for image synthesis. */
export function createRandom(seed: number, ...stream: Array<string | number>): Random {
  let a = stream.length === 0 ? seed >>> 0 : deriveSeed(seed, ...stream);
  let spare: number | undefined;
  const next = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    uniform: (min, max) => min + (max - min) * next(),
    int: (min, max) => min + Math.floor(next() * (max - min + 1)),
    chance: (p) => next() < p,
    normal: () => {
      if (spare !== undefined) {
        const s = spare;
        spare = undefined;
        return s;
      }
      const u = 1 - next();
      const r = Math.sqrt(-2 * Math.log(u));
      const phi = 2 * Math.PI * next();
      spare = r * Math.sin(phi);
      return r * Math.cos(phi);
    },
    pick: <T>(items: readonly T[]): T => {
      const item = items[Math.floor(next() * items.length)];
      if (item === undefined) throw new RangeError('pick() from an empty list');
      return item;
    },
  };
}
