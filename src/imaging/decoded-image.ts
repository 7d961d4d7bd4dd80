import type { Lut } from './lut.js';

/** How stored values become modality values (PS3.3 C.11.1): Rescale Slope/Intercept, or the Modality LUT. */
export type ModalityTransform = { kind: 'rescale'; slope: number; intercept: number } | { kind: 'lut'; lut: Lut };

/** Window Center / Width from the file (PS3.3 C.11.2.1.2), first of the values when several are given. */
export interface VoiWindow {
  kind: 'window';
  center: number;
  width: number;
  /** VOI LUT Function (0028,1056); LINEAR when absent. */
  fn: 'LINEAR' | 'LINEAR_EXACT' | 'SIGMOID';
}

/** The first item of the VOI LUT Sequence (0028,3010). */
export interface VoiLut {
  kind: 'lut';
  lut: Lut;
}

export type Photometric = 'MONOCHROME1' | 'MONOCHROME2';

/** The first frame of a grey image, in modality units, with what the file says about displaying it. */
export interface DecodedImage {
  rows: number;
  columns: number;
  photometric: Photometric;
  /** Modality values (after Bits Stored masking, sign, Rescale Slope/Intercept or Modality LUT), row-major. */
  values: Float32Array;
  /** Bits Stored (0028,0101): the stored values' range, which `scaling: 'bitsStored'` maps to [0, 1]. */
  bitsStored: number;
  /** How stored values became `values` (Rescale Slope/Intercept, or the Modality LUT). */
  modalityTransform: ModalityTransform;
  /** 1 where the stored value equals Pixel Padding Value (or lies in the padding range); undefined: no padding declared. */
  padding: Uint8Array | undefined;
  /** The file's own VOI: the VOI LUT Sequence when present, else Window Center/Width, else undefined. */
  voi: VoiWindow | VoiLut | undefined;
  sopInstanceUid?: string;
  /** The transfer syntax the pixels were decoded from. */
  transferSyntaxUid: string;
  /** Whether the pixels went through lossy compression on the way here (syntax or Lossy Image Compression "01"). */
  lossy: boolean;
}
