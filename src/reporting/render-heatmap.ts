// Source image + classification + relevance map -> the heatmap picture: the one call the pipeline makes for
// `render`. It decodes the source the way the classifier did (same VOI window, same placement in the model's
// input square), so the colours land on the anatomy the model saw.

import type { PreprocessingSpec } from '../imaging/preprocessing-spec.js';
import type { DecodedImage } from '../imaging/decoded-image.js';
import { loadImage } from '../imaging/read-image.js';
import { placement } from '../imaging/resize.js';
import { applyVoi } from '../imaging/voi.js';
import type { BannerContent } from './banner.js';
import { renderOverlay, type OverlayOptions, type RenderedOverlay } from './heatmap-overlay.js';
import {
  DEFAULT_USAGE_NOTICE,
  describeMethod,
  probabilityList,
  type ClassificationSummary,
  type ExplanationSummary,
} from './report-inputs.js';

export interface HeatmapModel {
  name: string;
  version: string;
  /** The manifest's intended-use text, shown after the usage notice. */
  intendedUse: string;
  preprocessing: Pick<PreprocessingSpec, 'inputSize' | 'resize' | 'window' | 'percentiles'>;
}

export interface HeatmapRelevance extends ExplanationSummary {
  /** inputSize x inputSize relevance values (src/lrp Explanation.relevance). */
  relevance: Float32Array;
}

export interface HeatmapRenderOptions extends Partial<OverlayOptions> {
  /** Banner notice; default "NOT FOR DIAGNOSTIC USE", '' when the site's configuration allows diagnostic use. */
  usageNotice?: string;
}

/** Decodes the source (Part 10 bytes, any transfer syntax the classifier reads) and renders its heatmap. */
export async function renderHeatmap(
  source: Uint8Array,
  classification: ClassificationSummary,
  explanation: HeatmapRelevance,
  model: HeatmapModel,
  options: HeatmapRenderOptions = {},
): Promise<RenderedOverlay> {
  return renderHeatmapOfImage(await loadImage(source), classification, explanation, model, options);
}

/** The same from an image already decoded (e.g. the one just classified), saving a second decode. */
export function renderHeatmapOfImage(
  image: DecodedImage,
  classification: ClassificationSummary,
  explanation: HeatmapRelevance,
  model: HeatmapModel,
  options: HeatmapRenderOptions = {},
): RenderedOverlay {
  const { usageNotice = DEFAULT_USAGE_NOTICE, ...overlayOptions } = options;
  const spec = model.preprocessing;
  // Padding pixels show black, whatever the model was fed there.
  const { pixels } = applyVoi(image, { window: spec.window, percentiles: spec.percentiles, padValue: 0 });
  const size = spec.inputSize;
  const banner: BannerContent = {
    predicted: classification.predicted,
    probabilities: probabilityList(classification),
    explainedClass: explanation.targetClass,
    modelName: model.name,
    modelVersion: model.version,
    // The rule parameters belong in DerivationDescription; the banner keeps to the composite's name.
    method: describeMethod({ targetClass: explanation.targetClass, composite: explanation.composite }),
    usageNotice,
    intendedUse: model.intendedUse,
  };
  return renderOverlay(
    {
      display: { pixels, rows: image.rows, columns: image.columns },
      relevance: {
        values: explanation.relevance,
        size,
        placement: placement(image.rows, image.columns, size, spec.resize),
      },
      banner,
    },
    overlayOptions,
  );
}
