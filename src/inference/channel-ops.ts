import * as tf from '@tensorflow/tfjs';
import { GatewayError, unreachable } from '../errors.js';

// Slicing and concatenating the last (channel) axis of NHWC tensors, as LRP on a DenseNet does at every layer
// (the relevance accumulated over a dense block's channels). On the wasm backend the stock kernels are slow at
// this: tf.slice first copies its whole input out of the wasm heap (readSync) and then one pixel at a time
// through a new subarray; tf.concat copies one pixel of one input at a time the same way. Measured on
// 56x56x256: 1.9-2.8 ms per slice, against 0.1-0.3 ms for the kernels below, which copy rows inside the heap
// (copyWithin: no allocation, no copy out). Other backends keep their own kernels.
const SLICE_KERNEL = 'CxrSliceChannels';
const CONCAT_KERNEL = 'CxrConcatChannels';

/** What the kernels below need of the wasm backend (BackendWasm's public methods). */
interface HeapBackend {
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  typedArrayFromHeap(t: tf.TensorInfo): ArrayBufferView;
}

function isHeapBackend(backend: unknown): backend is HeapBackend {
  const b = backend as Partial<HeapBackend> | null;
  return typeof b?.makeOutput === 'function' && typeof b.typedArrayFromHeap === 'function';
}

/** The heap as float32 and where `t` starts in it. */
function heapOf(backend: HeapBackend, t: tf.TensorInfo): { heap: Float32Array; start: number } {
  const view = backend.typedArrayFromHeap(t);
  return { heap: new Float32Array(view.buffer), start: view.byteOffset / 4 };
}

function rowsOf(shape: readonly number[]): number {
  return shape.slice(0, -1).reduce((a, b) => a * b, 1);
}

function checkFloat(t: tf.TensorInfo, what: string): void {
  if (t.dtype !== 'float32') throw new GatewayError('INTERNAL', `${what}: float32 tensors only, not ${t.dtype}`);
}

let registered = false;

function registerWasmKernels(): void {
  if (registered) return;
  registered = true;
  if (tf.getKernel(SLICE_KERNEL, 'wasm') === undefined) {
    tf.registerKernel({
      kernelName: SLICE_KERNEL,
      backendName: 'wasm',
      kernelFunc: ({ inputs, attrs, backend }) => {
        const x = inputs.x as tf.TensorInfo;
        const from = Number(attrs?.from);
        const count = Number(attrs?.count);
        if (!isHeapBackend(backend)) unreachable(`${SLICE_KERNEL}: not the wasm backend`);
        checkFloat(x, SLICE_KERNEL);
        const width = x.shape[x.shape.length - 1] ?? 0;
        const out = backend.makeOutput([...x.shape.slice(0, -1), count], 'float32');
        const source = heapOf(backend, x);
        const target = heapOf(backend, out);
        const rows = rowsOf(x.shape);
        for (let r = 0, s = source.start + from, t = target.start; r < rows; r += 1, s += width, t += count) {
          target.heap.copyWithin(t, s, s + count);
        }
        return out;
      },
    });
  }
  if (tf.getKernel(CONCAT_KERNEL, 'wasm') === undefined) {
    tf.registerKernel({
      kernelName: CONCAT_KERNEL,
      backendName: 'wasm',
      kernelFunc: ({ inputs, backend }) => {
        if (!isHeapBackend(backend)) unreachable(`${CONCAT_KERNEL}: not the wasm backend`);
        const parts = Object.keys(inputs)
          .sort((a, b) => Number(a) - Number(b))
          .map((k) => inputs[k] as tf.TensorInfo);
        const first = parts[0] as tf.TensorInfo;
        const widths = parts.map((p) => {
          checkFloat(p, CONCAT_KERNEL);
          return p.shape[p.shape.length - 1] ?? 0;
        });
        const total = widths.reduce((a, b) => a + b, 0);
        const out = backend.makeOutput([...first.shape.slice(0, -1), total], 'float32');
        const target = heapOf(backend, out);
        const rows = rowsOf(first.shape);
        let column = target.start;
        parts.forEach((p, i) => {
          const width = widths[i] ?? 0;
          const source = heapOf(backend, p);
          for (let r = 0, s = source.start, t = column; r < rows; r += 1, s += width, t += total)
            target.heap.copyWithin(t, s, s + width);
          column += width;
        });
        return out;
      },
    });
  }
}

function onWasm(): boolean {
  if (tf.getBackend() !== 'wasm') return false;
  registerWasmKernels();
  return true;
}

/** Channels [from, from + count) of an NHWC tensor. */
export function sliceChannels(t: tf.Tensor4D, from: number, count: number): tf.Tensor4D {
  const [n, h, w, c] = t.shape;
  if (from < 0 || count < 0 || from + count > c)
    throw new GatewayError('INTERNAL', `cannot take channels ${from}..${from + count} of ${c}`);
  if (from === 0 && count === c) return tf.clone(t);
  if (onWasm() && t.dtype === 'float32')
    return tf.engine().runKernel(SLICE_KERNEL, { x: t }, { from, count }) as tf.Tensor4D;
  return tf.slice(t, [0, 0, 0, from], [n, h, w, count]);
}

/** NHWC tensors of the same N, H and W side by side on the channel axis. */
export function concatChannels(parts: readonly tf.Tensor4D[]): tf.Tensor4D {
  const first = parts[0];
  if (first === undefined) throw new GatewayError('INTERNAL', 'nothing to concatenate');
  if (parts.length === 1) return tf.clone(first);
  const [n, h, w] = first.shape;
  for (const p of parts) {
    if (p.shape[0] !== n || p.shape[1] !== h || p.shape[2] !== w)
      throw new GatewayError(
        'INTERNAL',
        `cannot concatenate channels of ${p.shape.join('x')} to ${first.shape.join('x')}`,
      );
  }
  if (onWasm() && parts.every((p) => p.dtype === 'float32')) {
    return tf
      .engine()
      .runKernel(CONCAT_KERNEL, Object.fromEntries(parts.map((p, i) => [String(i), p])), {}) as tf.Tensor4D;
  }
  return tf.concat(parts as tf.Tensor4D[], 3);
}
