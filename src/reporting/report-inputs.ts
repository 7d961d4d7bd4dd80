// The plain values every reporting output is built from. The pipeline fills them from the model manifest, the
// classification and the explanation; nothing here knows how those were computed.

import type { ModelManifest } from '../inference/model-manifest.js';
import { convRule, type ConvSite, type LrpOptions } from '../lrp/composites.js';
import { packageVersion } from './package-root.js';

/** What the banner, the series description and the SR say unless the site's configuration says otherwise. */
export const DEFAULT_USAGE_NOTICE = 'NOT FOR DIAGNOSTIC USE';

/** The model as our outputs name it (General / Contributing Equipment, banner, SR observer context). */
export interface OutputModelInfo {
  name: string;
  version: string;
  /** Changes whenever the weights change: DeviceUID of the Contributing Equipment, part of every derived UID. */
  modelUid: string;
  /** Manufacturer written in the equipment modules. */
  manufacturer: string;
  /** The gateway's own version (package.json). */
  softwareVersions: string;
}

export interface ClassificationSummary {
  /** Class names in the model's output order. */
  classes: readonly string[];
  /** Softmax probabilities, same order. */
  probabilities: readonly number[];
  predicted: string;
}

/** How the heatmap was made, for the banner, DerivationDescription and ContributionDescription. */
export interface ExplanationSummary {
  /** The class the relevance explains. */
  targetClass: string;
  /** LRP rule composite name, e.g. `isnet`. */
  composite: string;
  /** Free text detail, e.g. "epsilon 0.01, alpha 2 beta 1"; optional. */
  parameters?: string;
}

export function outputModelInfo(
  manifest: Pick<ModelManifest, 'name' | 'version' | 'modelUid'>,
  manufacturer = 'cxr-gateway',
): OutputModelInfo {
  return {
    name: manifest.name,
    version: manifest.version,
    modelUid: manifest.modelUid,
    manufacturer,
    softwareVersions: packageVersion(),
  };
}

/** "LRP (isnet)" or "LRP (isnet, epsilon 0.01)": the method as people read it. */
export function describeMethod(e: ExplanationSummary): string {
  return `LRP (${e.composite}${e.parameters ? `, ${e.parameters}` : ''})`;
}

/** Class names paired with their probabilities. */
export function probabilityList(c: ClassificationSummary): Array<{ name: string; probability: number }> {
  return c.classes.map((name, i) => ({ name, probability: c.probabilities[i] ?? 0 }));
}

/** Every convolution site kind a DenseNet has, enough to see each rule a composite uses (blocks and transitions beyond these repeat). */
const SITES: readonly ConvSite[] = [
  { kind: 'stem' },
  ...[0, 1, 2, 3].map((block): ConvSite => ({ kind: 'dense-layer', block })),
  ...[0, 1, 2].map((index): ConvSite => ({ kind: 'transition', index })),
];

/**
 * The parameters of every rule a composite applies, as text: "epsilon 0.01, alpha 2, beta 1". Read off the
 * rules themselves (convRule), so the text cannot drift from what the engine ran: epsilon is always there (dense,
 * BatchNorm and pooling steps use it), then alpha/beta, gamma, and z^B's bounds when the site configured them.
 */
export function describeLrpParameters(options: LrpOptions): string {
  const rules = SITES.map((site) => convRule(options, site));
  const parts = [`epsilon ${options.epsilon}`];
  for (const rule of rules) {
    let text: string | undefined;
    if (rule.kind === 'alpha-beta') text = `alpha ${rule.alpha}, beta ${rule.beta}`;
    else if (rule.kind === 'gamma') text = `gamma ${rule.gamma}`;
    else if (rule.kind === 'z-box' && options.inputBounds)
      text = `z-box low [${options.inputBounds.low.join(' ')}] high [${options.inputBounds.high.join(' ')}]`;
    if (text !== undefined && !parts.includes(text)) parts.push(text);
  }
  return parts.join(', ');
}
