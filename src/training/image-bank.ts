import * as tf from '@tensorflow/tfjs';
import { GatewayError, describeError } from '../errors.js';
import type { PreprocessingSpec } from '../imaging/preprocessing-spec.js';
import { preprocess } from '../imaging/preprocess.js';
import { augmentGrey, type AugmentationSpec } from './augmentation.js';
import type { LabelledImage } from './labelled-image.js';
import type { SeededRandom } from './random.js';

/**
 * The training images as the network sees them, through the inference path's own preprocess() (window,
 * resize, padding) so training and inference agree exactly. What is kept is the grey image in [0, 1]
 * display units (preprocess with one channel, mean 0, std 1); the model's channels and mean/std are applied
 * when a batch is assembled, with the same arithmetic as preprocess(), after any augmentation.
 * Images are cached in memory up to a budget; the rest are decoded again each time they are used.
 */
export class ImageBank {
  private readonly cache = new Map<number, Float32Array>();
  private cachedBytes = 0;
  readonly size: number;
  readonly channels: number;
  private readonly mean: number[];
  private readonly inverseStd: number[];

  constructor(
    private readonly images: readonly LabelledImage[],
    private readonly spec: PreprocessingSpec,
    private readonly cacheBudgetBytes: number,
  ) {
    this.size = spec.inputSize;
    this.channels = spec.channels;
    this.mean = Array.from({ length: spec.channels }, (_, c) => spec.mean[c] ?? spec.mean[0] ?? 0);
    this.inverseStd = Array.from({ length: spec.channels }, (_, c) => 1 / (spec.std[c] ?? spec.std[0] ?? 1));
  }

  get length(): number {
    return this.images.length;
  }

  image(index: number): LabelledImage {
    const image = this.images[index];
    if (image === undefined) throw new RangeError(`no image ${index}`);
    return image;
  }

  /** Decodes and caches every image that fits the budget (reporting progress), so epochs start warm. */
  async warm(onProgress?: (done: number, total: number) => void): Promise<void> {
    for (let i = 0; i < this.images.length; i += 1) {
      await this.grey(i);
      onProgress?.(i + 1, this.images.length);
    }
  }

  /** The preprocessed grey image, inputSize x inputSize, [0, 1] display units. */
  async grey(index: number): Promise<Float32Array> {
    const cached = this.cache.get(index);
    if (cached) return cached;
    const image = this.image(index);
    let grey: Float32Array;
    try {
      const decoded = await image.decode();
      grey = preprocess(decoded, { ...this.spec, channels: 1, mean: [0], std: [1] }).data;
    } catch (error) {
      throw new GatewayError(
        'TRAINING_IMAGE_UNREADABLE',
        `training image ${image.source} cannot be read: ${describeError(error)}; fix or remove it from the labels`,
        {
          cause: error,
        },
      );
    }
    if (this.cachedBytes + grey.byteLength <= this.cacheBudgetBytes) {
      this.cache.set(index, grey);
      this.cachedBytes += grey.byteLength;
    }
    return grey;
  }

  /**
   * An NHWC batch of model inputs [n, size, size, channels] and its targets [n, classes]; with `augment`,
   * each image gets its own random augmentation first.
   */
  async batch(
    indices: readonly number[],
    augment?: { spec: AugmentationSpec; random: SeededRandom },
  ): Promise<{ x: tf.Tensor4D; y: tf.Tensor2D }> {
    const pixels = this.size * this.size;
    const c = this.channels;
    const data = new Float32Array(indices.length * pixels * c);
    const classes = this.image(indices[0] ?? 0).target.length;
    const targets = new Float32Array(indices.length * classes);
    for (const [k, index] of indices.entries()) {
      let grey = await this.grey(index);
      if (augment?.spec.enabled) grey = augmentGrey(grey, this.size, augment.spec, augment.random, this.spec.padValue);
      const offset = k * pixels * c;
      for (let ch = 0; ch < c; ch += 1) {
        const m = this.mean[ch] ?? 0;
        const inv = this.inverseStd[ch] ?? 1;
        // Same expression as preprocess(): (grey - mean) * (1 / std), rounded once to float32.
        for (let i = 0, j = offset + ch; i < pixels; i += 1, j += c) data[j] = ((grey[i] ?? 0) - m) * inv;
      }
      targets.set(this.image(index).target, k * classes);
    }
    return tf.tidy(() => {
      const x = tf.tensor4d(data, [indices.length, this.size, this.size, c]);
      // A one-channel model still has torchvision's 3-channel stem, as BatchRunner feeds it.
      return {
        x: c === 3 ? x : (tf.tile(x, [1, 1, 1, 3]) as tf.Tensor4D),
        y: tf.tensor2d(targets, [indices.length, classes]),
      };
    });
  }
}
