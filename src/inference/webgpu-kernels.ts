import * as tf from '@tensorflow/tfjs';

// tfjs-backend-webgpu 4.22 handles rank <= 4 well. Above that its Pad shader indexes a vec6 struct, which
// current WGSL compilers (Dawn 0.6 in the `webgpu` package) reject: the pipeline is invalid, Dawn prints a
// validation error and the output is garbage, with no exception. Its Tile kernel runs on the CPU after a
// synchronous read, which in Node fails (it stages through OffscreenCanvas, a browser API). LRP uses both at
// rank 6 (2x2 upsampling and stride dilation). Both ops can be rewritten at rank <= 4 with the same memory
// order, so the kernels below lower the rank, call the original kernel and reshape back.
const GPU_MAX_RANK = 4;

/**
 * Rewrites a tile as the same tile of the lowest rank that keeps the memory order: an axis repeated once
 * folds into the axis before it (the block it belongs to just grows), and an axis of size 1 repeated once
 * disappears. tile([n, h, 1, w, 1, c], [1, 1, 2, 1, 2, 1]) becomes tile([n * h, w, c], [1, 2, 2]).
 */
export function collapseTile(shape: readonly number[], reps: readonly number[]): { shape: number[]; reps: number[] } {
  const axes: Array<{ size: number; rep: number }> = [];
  shape.forEach((size, i) => {
    const rep = reps[i] ?? 1;
    if (size === 1 && rep === 1) return;
    const previous = axes[axes.length - 1];
    if (rep === 1 && previous !== undefined) previous.size *= size;
    else axes.push({ size, rep });
  });
  if (axes.length === 0) return { shape: [1], reps: [1] };
  return { shape: axes.map((a) => a.size), reps: axes.map((a) => a.rep) };
}

/**
 * The same for a constant pad: an unpadded axis folds into the axis before it, whose padding then counts
 * in blocks of the folded size. pad([n, h, 1, w, 1, c], [0,0],[0,0],[0,1],[0,0],[0,1],[0,0]) becomes
 * pad([n * h, w, c], [0,0],[0,w],[0,c]).
 */
export function collapsePad(
  shape: readonly number[],
  paddings: ReadonlyArray<readonly [number, number]>,
): { shape: number[]; paddings: Array<[number, number]> } {
  const axes: Array<{ size: number; before: number; after: number }> = [];
  shape.forEach((size, i) => {
    const [before, after] = paddings[i] ?? [0, 0];
    if (size === 1 && before === 0 && after === 0) return;
    const previous = axes[axes.length - 1];
    if (before === 0 && after === 0 && previous !== undefined) {
      previous.size *= size;
      previous.before *= size;
      previous.after *= size;
    } else axes.push({ size, before, after });
  });
  if (axes.length === 0) return { shape: [1], paddings: [[0, 0]] };
  return { shape: axes.map((a) => a.size), paddings: axes.map((a): [number, number] => [a.before, a.after]) };
}

let patched = false;

/**
 * Replaces the webgpu backend's Tile and PadV2 kernels by ones that lower the rank first (above rank 4 only;
 * lower ranks go straight to the original). Call after @tensorflow/tfjs-backend-webgpu registered its kernels.
 */
export function patchWebGpuKernels(backendName = 'webgpu'): void {
  if (patched) return;
  const reshape = tf.getKernel('Reshape', backendName);
  if (reshape === undefined) return;
  const reshapeTo = (x: tf.TensorInfo, backend: tf.KernelBackend, shape: number[]) =>
    reshape.kernelFunc({ inputs: { x }, backend, attrs: { shape } }) as tf.TensorInfo;

  /** Wraps kernel `name`: `lower` gives the lower-rank input shape and attributes, or undefined to leave it alone. */
  const lowerRank = (
    name: string,
    lower: (
      x: tf.TensorInfo,
      attrs: tf.NamedAttrMap,
    ) => { shape: number[]; attrs: tf.NamedAttrMap; outShape: number[] } | undefined,
  ) => {
    const original = tf.getKernel(name, backendName);
    if (original === undefined) return;
    const kernelFunc: tf.KernelFunc = (args) => {
      const x = args.inputs['x'];
      const plan =
        x !== undefined && x.shape.length > GPU_MAX_RANK && x.dtype !== 'string'
          ? lower(x, args.attrs ?? {})
          : undefined;
      if (x === undefined || plan === undefined || plan.shape.length > GPU_MAX_RANK) return original.kernelFunc(args);
      // tfjs types a kernel's backend as {}; kernels registered for webgpu get the WebGPU KernelBackend.
      const backend = args.backend as tf.KernelBackend;
      const flat = reshapeTo(x, backend, plan.shape);
      const result = original.kernelFunc({ ...args, inputs: { x: flat }, attrs: plan.attrs }) as tf.TensorInfo;
      const out = reshapeTo(result, backend, plan.outShape);
      // Reshape shares the data and counts a reference: release the intermediates' references.
      backend.disposeData(flat.dataId);
      backend.disposeData(result.dataId);
      return out;
    };
    tf.unregisterKernel(name, backendName);
    tf.registerKernel({ ...original, kernelFunc });
  };

  lowerRank('Tile', (x, attrs) => {
    const reps = attrs['reps'] as number[];
    const lowered = collapseTile(x.shape, reps);
    return {
      shape: lowered.shape,
      attrs: { reps: lowered.reps },
      outShape: x.shape.map((size, i) => size * (reps[i] ?? 1)),
    };
  });
  lowerRank('PadV2', (x, attrs) => {
    const paddings = attrs['paddings'] as Array<[number, number]>;
    const lowered = collapsePad(x.shape, paddings);
    return {
      shape: lowered.shape,
      attrs: { paddings: lowered.paddings, constantValue: attrs['constantValue'] as number },
      outShape: x.shape.map((size, i) => (paddings[i]?.[0] ?? 0) + size + (paddings[i]?.[1] ?? 0)),
    };
  });
  patched = true;
}
