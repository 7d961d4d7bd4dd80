import * as tf from '@tensorflow/tfjs';
import { dilate, flipTranspose } from '../lrp/conv-relevance.js';

/** Rows/columns of zero padding a convolution adds on each side, as TensorFlow computes it. */
interface Padding {
  top: number;
  bottom: number;
  left: number;
  right: number;
}

export interface ConvOptions {
  stride: number;
  padding: 'same' | 'valid';
  /**
   * False where the input is data, not an activation (the stem): its gradient is then never computed,
   * which saves a full-resolution convolution per step.
   */
  inputGradient?: boolean;
}

/**
 * conv2d (NHWC, HWIO, no dilation) whose gradients are forward convolutions and matrix products only.
 *
 * Why: the wasm backend has no Conv2DBackpropFilter kernel at all and its Conv2DBackpropInput is a
 * plain loop, while its forward Conv2D and MatMul go through XNNPACK. So:
 * - dx is the adjoint as a forward convolution: dy dilated by the stride, padded to a "full"
 *   convolution, convolved with the filter rotated by 180 degrees and transposed in channels
 *   (the same construction as ConvRelevance.transposeConv);
 * - dW swaps the batch and channel roles: x as [Cin, H, W, N] convolved with dy as a filter
 *   [Ho, Wo, N, Cout] at dilation = stride gives [Cin, kh, kw, Cout];
 * - 1x1 stride-1 convolutions (most of a DenseNet) are matrix products both ways.
 */
export function trainableConv2d(x: tf.Tensor4D, w: tf.Tensor4D, options: ConvOptions): tf.Tensor4D {
  const { stride, padding } = options;
  const inputGradient = options.inputGradient ?? true;
  const op = tf.customGrad(
    (xIn: tf.Tensor | tf.GradSaveFunc, wIn: tf.Tensor | tf.GradSaveFunc, save: tf.Tensor | tf.GradSaveFunc) => {
      const input = xIn as tf.Tensor4D;
      const filter = wIn as tf.Tensor4D;
      (save as tf.GradSaveFunc)([input, filter]);
      return {
        value: tf.conv2d(input, filter, stride, padding),
        gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
          const [sx, sw] = saved as [tf.Tensor4D, tf.Tensor4D];
          const g = dy as tf.Tensor4D;
          const dx = inputGradient ? convInputGradient(g, sw, sx.shape, stride, padding) : tf.zerosLike(sx);
          return [dx, convFilterGradient(sx, g, sw.shape, stride, padding)];
        },
      };
    },
  );
  return op(x, w) as tf.Tensor4D;
}

/** TensorFlow's padding for `same` (extra row/column at the bottom/right) or none for `valid`. */
export function convPadding(
  inputShape: readonly number[],
  kernel: readonly number[],
  stride: number,
  padding: 'same' | 'valid',
): Padding {
  if (padding === 'valid') return { top: 0, bottom: 0, left: 0, right: 0 };
  const [, h = 0, w = 0] = inputShape;
  const [kh = 1, kw = 1] = kernel;
  const totalH = Math.max((Math.ceil(h / stride) - 1) * stride + kh - h, 0);
  const totalW = Math.max((Math.ceil(w / stride) - 1) * stride + kw - w, 0);
  const top = Math.floor(totalH / 2);
  const left = Math.floor(totalW / 2);
  return { top, bottom: totalH - top, left, right: totalW - left };
}

/** Gradient of conv2d with respect to its input, shaped like the input. */
export function convInputGradient(
  dy: tf.Tensor4D,
  w: tf.Tensor4D,
  inputShape: readonly number[],
  stride: number,
  padding: 'same' | 'valid',
): tf.Tensor4D {
  return tf.tidy(() => {
    const [kh, kw, cin, cout] = w.shape;
    const [n = 0, h = 0, width = 0] = inputShape;
    if (kh === 1 && kw === 1 && stride === 1) {
      // Explicit transposes: wasm's MatMul with a transposed operand is several times slower.
      const flat = tf.matMul(tf.reshape(dy, [-1, cout]), tf.transpose(tf.reshape(w, [cin, cout])));
      return tf.reshape(flat, [n, h, width, cin]);
    }
    const pad = convPadding(inputShape, w.shape, stride, padding);
    const dilated = dilate(dy, stride);
    // A "full" convolution of the dilated gradient; the bottom/right amounts bring it back to the input
    // size, including rows a strided window never reached (their gradient is zero).
    const top = kh - 1 - pad.top;
    const left = kw - 1 - pad.left;
    const bottom = h - dilated.shape[1] + pad.top;
    const right = width - dilated.shape[2] + pad.left;
    const padded = padOrCrop(dilated, top, bottom, left, right);
    return tf.conv2d(padded, flipTranspose(w), 1, 'valid');
  });
}

/** Gradient of conv2d with respect to its HWIO filter. */
export function convFilterGradient(
  x: tf.Tensor4D,
  dy: tf.Tensor4D,
  filterShape: readonly [number, number, number, number],
  stride: number,
  padding: 'same' | 'valid',
): tf.Tensor4D {
  return tf.tidy(() => {
    const [kh, kw, cin, cout] = filterShape;
    if (kh === 1 && kw === 1 && stride === 1) {
      const flat = tf.matMul(tf.transpose(tf.reshape(x, [-1, cin])), tf.reshape(dy, [-1, cout]));
      return tf.reshape(flat, [1, 1, cin, cout]);
    }
    const pad = convPadding(x.shape, filterShape, stride, padding);
    const [, ho, wo] = dy.shape;
    // Rows and columns past the last window ((Ho - 1) * stride + kh of the padded input) add output rows
    // beyond kh; cropping that small result is cheaper than cropping the input.
    const padded = tf.pad(x, [
      [0, 0],
      [pad.top, Math.max(0, (ho - 1) * stride + kh - x.shape[1] - pad.top)],
      [pad.left, Math.max(0, (wo - 1) * stride + kw - x.shape[2] - pad.left)],
      [0, 0],
    ]);
    const channelsAsBatch = tf.transpose(padded, [3, 1, 2, 0]); // [Cin, H, W, N]
    const gradientAsFilter = tf.transpose(dy, [1, 2, 0, 3]); // [Ho, Wo, N, Cout]
    const g = tf.conv2d(channelsAsBatch, gradientAsFilter, 1, 'valid', 'NHWC', stride); // [Cin, >= kh, >= kw, Cout]
    const exact = g.shape[1] === kh && g.shape[2] === kw ? g : tf.slice(g, [0, 0, 0, 0], [cin, kh, kw, cout]);
    return tf.transpose(exact, [1, 2, 0, 3]);
  });
}

/** Pads (positive amounts) or crops (negative amounts) the spatial axes. */
function padOrCrop(x: tf.Tensor4D, top: number, bottom: number, left: number, right: number): tf.Tensor4D {
  const padded = tf.pad(x, [
    [0, 0],
    [Math.max(top, 0), Math.max(bottom, 0)],
    [Math.max(left, 0), Math.max(right, 0)],
    [0, 0],
  ]);
  if (top >= 0 && bottom >= 0 && left >= 0 && right >= 0) return padded;
  const [n, h, w, c] = padded.shape;
  const t = Math.max(-top, 0);
  const l = Math.max(-left, 0);
  return tf.slice(padded, [0, t, l, 0], [n, h - t - Math.max(-bottom, 0), w - l - Math.max(-right, 0), c]);
}
