export const SopClass = {
  Verification: '1.2.840.10008.1.1',
  ComputedRadiographyImageStorage: '1.2.840.10008.5.1.4.1.1.1',
  DigitalXRayImageStorageForPresentation: '1.2.840.10008.5.1.4.1.1.1.1',
  DigitalXRayImageStorageForProcessing: '1.2.840.10008.5.1.4.1.1.1.1.1',
} as const;

/** Chest radiographs arrive as CR or DX; anything else is refused at association time by default. */
export const DEFAULT_STORAGE_SOP_CLASSES: readonly string[] = [
  SopClass.ComputedRadiographyImageStorage,
  SopClass.DigitalXRayImageStorageForPresentation,
  SopClass.DigitalXRayImageStorageForProcessing,
];
