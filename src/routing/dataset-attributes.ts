import { readDatasetTextFile } from '../dicom/dataset-text.js';

/**
 * Attribute values of a stored instance for routing, by tag. Reading stops at Pixel Data: rules look at the header
 * only, and a 10 MB image is not decoded to route it. Text is decoded with the instance's Specific Character Set
 * (ISO 2022 code extensions included); a Person Name is compared by its alphabetic group, as before.
 */
export function readDatasetAttributes(path: string): (tag: string) => readonly string[] | undefined {
  const text = readDatasetTextFile(path);
  return (tag) => {
    const values = text.values(tag);
    if (values === undefined) return undefined;
    return text.vr(tag) === 'PN' ? values.map((v) => v.split('=')[0] ?? '') : values;
  };
}
