import type { OnnxGraphBuilder } from '../inference/onnx/onnx-graph.js';
import { GatewayError } from '../errors.js';

/** A max pool over an already padded NCHW input ('valid'): its window, stride, and the sizes it maps between. */
export interface MaxPoolGeometry {
  window: number;
  stride: number;
  /** The (padded) input's height and width. */
  inputHeight: number;
  inputWidth: number;
  /** The pooled output's height and width. */
  outputHeight: number;
  outputWidth: number;
}

/**
 * Winner takes all through a max pool, as graph nodes: each window's relevance `r` goes to the input that won it,
 * the first maximum in the window's row-major scan on ties (DenseNetLrp's rule, so nothing is counted twice).
 * Built from strided slices, one per window offset, rather than MaxPool's Indices output, which the WebGPU
 * execution provider does not implement. Each offset's share lands on a phase of the input grid (rows dy mod
 * stride, columns dx mod stride); the phases are interleaved back into the input's layout at the end.
 * Returns relevance shaped like `input`.
 */
export function maxPoolRelevanceGraph(
  g: OnnxGraphBuilder,
  input: string,
  pooled: string,
  r: string,
  p: MaxPoolGeometry,
): string {
  const { window: k, stride: s, outputHeight: ho, outputWidth: wo } = p;
  const margin = Math.floor((k - 1) / s);
  if (s * (ho + margin) < p.inputHeight || s * (wo + margin) < p.inputWidth)
    throw new GatewayError('INTERNAL', 'the max pool relevance phases do not cover the pool input');
  const shares: string[][] = [];
  let taken: string | undefined;
  for (let dy = 0; dy < k; dy += 1) {
    const row: string[] = [];
    for (let dx = 0; dx < k; dx += 1) {
      const view = g.node('Slice', [
        input,
        g.int64s([dy, dx]),
        g.int64s([dy + (ho - 1) * s + 1, dx + (wo - 1) * s + 1]),
        g.int64s([2, 3]),
        g.int64s([s, s]),
      ]);
      const equal = g.node('Cast', [g.node('Equal', [view, pooled])], { to: { i: 1 } });
      const wins: string = taken ? g.node('Mul', [equal, g.node('Sub', [g.scalar(1), taken])]) : equal;
      const last = dy === k - 1 && dx === k - 1;
      if (!last) taken = taken ? g.node('Add', [taken, wins]) : wins;
      row.push(g.node('Mul', [wins, r]));
    }
    shares.push(row);
  }
  const rows: string[] = [];
  for (let py = 0; py < s; py += 1) {
    const columns: string[] = [];
    for (let px = 0; px < s; px += 1) {
      let phase: string | undefined;
      for (let dy = py; dy < k; dy += s) {
        for (let dx = px; dx < k; dx += s) {
          const sy = Math.floor(dy / s);
          const sx = Math.floor(dx / s);
          const placed = g.node('Pad', [
            shares[dy]?.[dx] as string,
            g.int64s([0, 0, sy, sx, 0, 0, margin - sy, margin - sx]),
          ]);
          phase = phase ? g.node('Add', [phase, placed]) : placed;
        }
      }
      if (!phase) throw new GatewayError('INTERNAL', 'a max pool window smaller than its stride');
      columns.push(g.node('Reshape', [phase, g.int64s([0, 0, ho + margin, 1, wo + margin, 1])]));
    }
    rows.push(columns.length === 1 ? (columns[0] as string) : g.node('Concat', columns, { axis: { i: 5 } }));
  }
  const interleaved = rows.length === 1 ? (rows[0] as string) : g.node('Concat', rows, { axis: { i: 3 } });
  const grid = g.node('Reshape', [interleaved, g.int64s([0, 0, s * (ho + margin), s * (wo + margin)])]);
  if (s * (ho + margin) === p.inputHeight && s * (wo + margin) === p.inputWidth) return grid;
  return g.node('Slice', [grid, g.int64s([0, 0]), g.int64s([p.inputHeight, p.inputWidth]), g.int64s([2, 3])]);
}
