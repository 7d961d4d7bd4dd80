import { z } from 'zod';

/**
 * How a model wants its input: the part of a model manifest that preprocessing obeys. A model trained on
 * torchvision transforms typically wants 3 replicated channels scaled to [0, 1], then ImageNet mean/std.
 */
export const preprocessingSchema = z
  .object({
    /** Square input edge in pixels (e.g. 224). */
    inputSize: z.number().int().min(8).max(2048),
    /** `pad`: keep the aspect ratio, fit inside, pad with the padding value; `stretch`: fill the square. */
    resize: z.enum(['pad', 'stretch']).default('pad'),
    /** Value (after windowing, in [0, 1] units, before mean/std) used for the padded border. */
    padValue: z.number().min(0).max(1).default(0),
    /** 3: the grey image replicated into RGB channels; 1: a single channel. */
    channels: z.union([z.literal(1), z.literal(3)]).default(3),
    /**
     * How stored values become [0, 1]. `window`: through a display window (`window` below), as a viewer shows the
     * image. `bitsStored`: v / (2^BitsStored - 1) over the stored values' whole range, for models trained on
     * images exported without a window (PNGs of the stored values: an 8-bit PNG read as v / 255). With an 8-bit
     * image and the window 127.5 / 256 the DICOM LINEAR function gives (v + 0.5) / 255 instead, half a step off.
     */
    // Optional rather than defaulted, so that specs written in code before the option existed stay valid: absent
    // means `window`.
    scaling: z.enum(['window', 'bitsStored']).optional(),
    /**
     * With `scaling: 'window'`. `dicom`: the image's own VOI (VOI LUT Sequence, else Window Center/Width), else a percentile window;
     * `percentile`: always the robust percentile window (ignores the file's window).
     */
    window: z.enum(['dicom', 'percentile']).default('dicom'),
    /** Lower and upper percentiles of the robust window (pixels outside the body's padding value only). */
    percentiles: z.tuple([z.number().min(0).max(50), z.number().min(50).max(100)]).default([0.5, 99.5]),
    /** Per-channel mean and std applied after scaling to [0, 1]: x' = (x - mean) / std. */
    mean: z.array(z.number()).min(1).max(3).default([0.485, 0.456, 0.406]),
    std: z.array(z.number().positive()).min(1).max(3).default([0.229, 0.224, 0.225]),
  })
  .strict();

export type PreprocessingSpec = z.infer<typeof preprocessingSchema>;
