// Host-side filters for the ONNX LRP graphs: every rule's filter (w+, w-, w + gamma w+, the adjoints) is made
// once here from the torch weights, so the graph only ever convolves with initializers.

/** A convolution filter in torch layout: OIHW, [out, in, kh, kw]. */
export interface HostFilter {
  data: Float32Array;
  dims: [number, number, number, number];
}

/** Each element through `f`, rounded to float32 as the TF.js engine's elementwise ops round. */
export function mapFilter(w: HostFilter, f: (v: number) => number): HostFilter {
  return { data: Float32Array.from(w.data, (v) => Math.fround(f(v))), dims: [...w.dims] };
}

/** w * scale[o] per output channel (a BatchNorm after the convolution, folded in). */
export function scaleOutputs(w: HostFilter, scale: Float32Array): HostFilter {
  const [o, i, kh, kw] = w.dims;
  const per = i * kh * kw;
  const data = new Float32Array(w.data.length);
  for (let c = 0; c < o; c += 1) {
    const s = scale[c] ?? 0;
    for (let k = 0; k < per; k += 1) data[c * per + k] = Math.fround((w.data[c * per + k] ?? 0) * s);
  }
  return { data, dims: [...w.dims] };
}

export const positivePart = (w: HostFilter): HostFilter => mapFilter(w, (v) => (v > 0 ? v : 0));
export const negativePart = (w: HostFilter): HostFilter => mapFilter(w, (v) => (v < 0 ? v : 0));

/** Gamma's filter: w + gamma * w+ (ConvRelevance's order of operations). */
export function gammaFilter(w: HostFilter, gamma: number): HostFilter {
  return mapFilter(w, (v) => v + Math.fround((v > 0 ? v : 0) * gamma));
}

/** Gamma's bias: b + gamma * b+. */
export function gammaBias(b: Float32Array, gamma: number): Float32Array {
  return Float32Array.from(b, (v) => Math.fround(v + Math.fround((v > 0 ? v : 0) * gamma)));
}

/** Filters stacked on output channels (one convolution computes both). */
export function concatOutputs(a: HostFilter, b: HostFilter): HostFilter {
  const data = new Float32Array(a.data.length + b.data.length);
  data.set(a.data, 0);
  data.set(b.data, a.data.length);
  return { data, dims: [a.dims[0] + b.dims[0], a.dims[1], a.dims[2], a.dims[3]] };
}

/**
 * The filter of a stride-1 convolution's adjoint as a forward Conv: rotated by 180 degrees, input and output
 * channels swapped ([in, out, kh, kw]); with the forward padding (k - 1) / 2 it is the exact adjoint.
 */
export function adjointFilter(w: HostFilter): HostFilter {
  const [o, i, kh, kw] = w.dims;
  const data = new Float32Array(w.data.length);
  for (let a = 0; a < o; a += 1)
    for (let b = 0; b < i; b += 1)
      for (let y = 0; y < kh; y += 1)
        for (let x = 0; x < kw; x += 1)
          data[((b * o + a) * kh + (kh - 1 - y)) * kw + (kw - 1 - x)] = w.data[((a * i + b) * kh + y) * kw + x] ?? 0;
  return { data, dims: [i, o, kh, kw] };
}

/**
 * z^B's bound filter summed over input channels, [out, 1, kh, kw]: sum_c (low_c w+ + high_c w-). Its adjoint gives
 * the bounds' part of the input relevance already summed over the channels, which is all the map needs.
 */
export function boundFilter(w: HostFilter, low: readonly number[], high: readonly number[]): HostFilter {
  const [o, i, kh, kw] = w.dims;
  const area = kh * kw;
  const data = new Float32Array(o * area);
  for (let a = 0; a < o; a += 1)
    for (let b = 0; b < i; b += 1)
      for (let k = 0; k < area; k += 1) {
        const v = w.data[(a * i + b) * area + k] ?? 0;
        data[a * area + k] = (data[a * area + k] ?? 0) + (v > 0 ? v * (low[b] ?? 0) : v * (high[b] ?? 0));
      }
  return { data, dims: [o, 1, kh, kw] };
}

/** Input channels of two filters with the same outputs, stacked ([out, in_a + in_b, kh, kw]). */
export function concatInputs(a: HostFilter, b: HostFilter): HostFilter {
  const [o, ia, kh, kw] = a.dims;
  const ib = b.dims[1];
  const area = kh * kw;
  const data = new Float32Array(o * (ia + ib) * area);
  for (let c = 0; c < o; c += 1) {
    data.set(a.data.subarray(c * ia * area, (c + 1) * ia * area), c * (ia + ib) * area);
    data.set(b.data.subarray(c * ib * area, (c + 1) * ib * area), (c * (ia + ib) + ia) * area);
  }
  return { data, dims: [o, ia + ib, kh, kw] };
}
