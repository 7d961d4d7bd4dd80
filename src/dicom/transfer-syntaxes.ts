export const TransferSyntax = {
  ImplicitVRLittleEndian: '1.2.840.10008.1.2',
  ExplicitVRLittleEndian: '1.2.840.10008.1.2.1',
  DeflatedExplicitVRLittleEndian: '1.2.840.10008.1.2.1.99',
  JpegBaseline: '1.2.840.10008.1.2.4.50',
  JpegExtended: '1.2.840.10008.1.2.4.51',
  JpegLosslessProcess14: '1.2.840.10008.1.2.4.57',
  JpegLosslessSV1: '1.2.840.10008.1.2.4.70',
  JpegLsLossless: '1.2.840.10008.1.2.4.80',
  JpegLsLossy: '1.2.840.10008.1.2.4.81',
  Jpeg2000Lossless: '1.2.840.10008.1.2.4.90',
  Jpeg2000: '1.2.840.10008.1.2.4.91',
  RleLossless: '1.2.840.10008.1.2.5',
} as const;

/** How the bytes of a dataset in a transfer syntax are laid out, as far as walking elements goes. */
export interface TransferSyntaxEncoding {
  explicitVr: boolean;
  deflated: boolean;
  /** Pixel data is encapsulated (fragments in items) rather than native. */
  encapsulated: boolean;
}

const ENCODINGS: Record<string, TransferSyntaxEncoding> = {
  [TransferSyntax.ImplicitVRLittleEndian]: { explicitVr: false, deflated: false, encapsulated: false },
  [TransferSyntax.ExplicitVRLittleEndian]: { explicitVr: true, deflated: false, encapsulated: false },
  [TransferSyntax.DeflatedExplicitVRLittleEndian]: { explicitVr: true, deflated: true, encapsulated: false },
  [TransferSyntax.JpegBaseline]: { explicitVr: true, deflated: false, encapsulated: true },
  [TransferSyntax.JpegExtended]: { explicitVr: true, deflated: false, encapsulated: true },
  [TransferSyntax.JpegLosslessProcess14]: { explicitVr: true, deflated: false, encapsulated: true },
  [TransferSyntax.JpegLosslessSV1]: { explicitVr: true, deflated: false, encapsulated: true },
  [TransferSyntax.JpegLsLossless]: { explicitVr: true, deflated: false, encapsulated: true },
  [TransferSyntax.JpegLsLossy]: { explicitVr: true, deflated: false, encapsulated: true },
  [TransferSyntax.Jpeg2000Lossless]: { explicitVr: true, deflated: false, encapsulated: true },
  [TransferSyntax.Jpeg2000]: { explicitVr: true, deflated: false, encapsulated: true },
  [TransferSyntax.RleLossless]: { explicitVr: true, deflated: false, encapsulated: true },
};

/**
 * Our order of preference when a proposer leaves the choice to us. Native syntaxes first: they need no
 * decoder later and every PACS accepts them.
 */
export const DEFAULT_TRANSFER_SYNTAXES: readonly string[] = [
  TransferSyntax.ExplicitVRLittleEndian,
  TransferSyntax.ImplicitVRLittleEndian,
  TransferSyntax.DeflatedExplicitVRLittleEndian,
  TransferSyntax.JpegLosslessSV1,
  TransferSyntax.JpegLosslessProcess14,
  TransferSyntax.JpegLsLossless,
  TransferSyntax.Jpeg2000Lossless,
  TransferSyntax.RleLossless,
  TransferSyntax.JpegBaseline,
  TransferSyntax.JpegExtended,
  TransferSyntax.JpegLsLossy,
  TransferSyntax.Jpeg2000,
];

export function isKnownTransferSyntax(uid: string): boolean {
  return uid in ENCODINGS;
}

export function encodingOf(uid: string): TransferSyntaxEncoding | undefined {
  return ENCODINGS[uid];
}
