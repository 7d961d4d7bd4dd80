import type { KeyAttributes } from '../dicom/dataset-walker.js';

/** Which images the classifier is meant for. The model was trained on frontal chest radiographs only. */
export interface EligibilityRules {
  modalities: readonly string[];
  bodyParts: readonly string[];
  viewPositions: readonly string[];
}

export const DEFAULT_ELIGIBILITY: EligibilityRules = {
  modalities: ['CR', 'DX'],
  bodyParts: ['CHEST'],
  viewPositions: ['PA', 'AP'],
};

export type Eligibility = { eligible: true } | { eligible: false; reason: string };

/** Decides from the indexed attributes alone, so a skipped image costs no pixel decoding. */
export function checkEligibility(attributes: KeyAttributes, rules: EligibilityRules): Eligibility {
  const checks: Array<[string, string | undefined, readonly string[]]> = [
    ['Modality', attributes.modality, rules.modalities],
    ['BodyPartExamined', attributes.bodyPartExamined, rules.bodyParts],
    ['ViewPosition', attributes.viewPosition, rules.viewPositions],
  ];
  for (const [keyword, raw, allowed] of checks) {
    const value = raw?.trim().toUpperCase() ?? '';
    if (!allowed.map((a) => a.toUpperCase()).includes(value)) {
      return {
        eligible: false,
        reason:
          value === ''
            ? `${keyword} is empty (classified: ${allowed.join(', ')})`
            : `${keyword} is ${value}, not one of ${allowed.join(', ')}`,
      };
    }
  }
  return { eligible: true };
}
