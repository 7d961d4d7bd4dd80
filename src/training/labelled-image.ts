import type { DecodedImage } from '../imaging/decoded-image.js';
import type { TaskKind } from './losses.js';

/** One training example: where its pixels come from and what it is labelled. */
export interface LabelledImage {
  /** The file it came from, for logs and errors. */
  source: string;
  /** Images of one patient stay on one side of the validation split. */
  group: string;
  /** One entry per task class: one-hot (single-label) or multi-hot (multi-label). */
  target: Float32Array;
  /** Decodes the image to modality values, as the inference path's readImage does for DICOM. */
  decode: () => Promise<DecodedImage>;
}

export interface LabelledDataset {
  kind: TaskKind;
  /** The task's classes, in the order of the network's outputs. */
  classes: string[];
  images: LabelledImage[];
  /** Where the data came from, for the training log. */
  description: string;
}
