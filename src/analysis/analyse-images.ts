// Stored file -> decode -> preprocess -> forward pass (and LRP) -> heatmap picture: the one analysis path. The
// daemon's worker (image-work.ts, which then writes the SC/SR), `render` and `classify` all call analyseImages, so
// what an admin sees from the command line is what the PACS receives, pixel for pixel.

import { readFileSync } from 'node:fs';
import { GatewayError } from '../errors.js';
import type { DecodedImage } from '../imaging/decoded-image.js';
import { preprocess } from '../imaging/preprocess.js';
import { loadImage } from '../imaging/read-image.js';
import type { LoadedModel } from '../inference/model-loader.js';
import type { DenseNetLrp, ExplainTarget, Explanation } from '../lrp/densenet-lrp.js';
import type { RenderedOverlay } from '../reporting/heatmap-overlay.js';
import { renderHeatmapOfImage, type HeatmapRenderOptions } from '../reporting/render-heatmap.js';
import { describeLrpParameters, type ExplanationSummary } from '../reporting/report-inputs.js';
import { classificationFromLogits, inputBatch, type Classification } from './batch-runner.js';

/** What to do with the images: only classify them, or classify, explain and draw the heatmap picture. */
export type AnalysisMode =
  | { kind: 'classify' }
  | {
      kind: 'explain';
      lrp: DenseNetLrp;
      target: ExplainTarget;
      /** Layout, size and banner notice of the picture; the daemon uses the defaults. */
      heatmap?: HeatmapRenderOptions;
    };

export interface ImageHeatmap {
  /** The explanation of the first explained class (the only one for any target but 'all'). */
  explanation: Explanation;
  /** How it was made, with every rule's parameters: what the picture's banner, the SC and the SR record. */
  summary: ExplanationSummary;
  overlay: RenderedOverlay;
}

export type AnalysedImage<Id> =
  | {
      id: Id;
      kind: 'analysed';
      /** The stored file's bytes (the SC and SR copy the patient and study from them). */
      bytes: Buffer;
      classification: Classification;
      /** Set in 'explain' mode. */
      heatmap?: ImageHeatmap;
      /** Milliseconds: decode (read, decode, preprocess); explain (the batch's forward pass and LRP, shared out evenly); render. */
      stageMs: { decode: number; explain: number; render: number };
    }
  /** The image alone failed (unreadable file or pixels, or a picture that could not be drawn); the rest of the batch ran. */
  | { id: Id; kind: 'failed'; stage: 'decode' | 'render'; error: unknown };

/**
 * Analyses a batch of stored files with one forward pass: in 'explain' mode the LRP engine's forward pass also
 * gives every class's logits, so the classification needs no pass of its own and the explained 'predicted' class
 * is the reported one by construction. Results come back in the order of `files`. An error of the pass itself
 * (the backend failing) is thrown: it belongs to no single image.
 */
export async function analyseImages<Id>(
  model: LoadedModel,
  files: ReadonlyArray<{ id: Id; path: string }>,
  mode: AnalysisMode,
): Promise<Array<AnalysedImage<Id>>> {
  const { manifest } = model;
  const results: Array<AnalysedImage<Id> | undefined> = new Array(files.length);
  const ready: Array<{ slot: number; bytes: Buffer; image: DecodedImage; input: Float32Array; decodeMs: number }> = [];
  for (const [slot, file] of files.entries()) {
    try {
      const started = performance.now();
      const bytes = readFileSync(file.path);
      const image = await loadImage(bytes);
      const input = preprocess(image, manifest.preprocessing).data;
      ready.push({ slot, bytes, image, input, decodeMs: performance.now() - started });
    } catch (error) {
      results[slot] = { id: file.id, kind: 'failed', stage: 'decode', error };
    }
  }
  if (ready.length > 0) {
    const started = performance.now();
    const passes = await forward(
      model,
      ready.map((r) => r.input),
      mode,
    );
    const explainMs = (performance.now() - started) / ready.length;
    for (const [k, r] of ready.entries()) {
      const id = (files[r.slot] as { id: Id }).id;
      const pass = passes[k];
      const renderStarted = performance.now();
      try {
        if (pass === undefined) throw new GatewayError('INTERNAL', 'the forward pass returned no result for the image');
        const heatmap =
          mode.kind === 'explain' && pass.explanation !== undefined
            ? drawHeatmap(model, r.image, pass.classification, pass.explanation, mode.lrp, mode.heatmap)
            : undefined;
        if (mode.kind === 'explain' && heatmap === undefined)
          throw new GatewayError('INTERNAL', 'LRP returned no explanation for the image');
        results[r.slot] = {
          id,
          kind: 'analysed',
          bytes: r.bytes,
          classification: pass.classification,
          ...(heatmap === undefined ? {} : { heatmap }),
          stageMs: { decode: r.decodeMs, explain: explainMs, render: performance.now() - renderStarted },
        };
      } catch (error) {
        results[r.slot] = { id, kind: 'failed', stage: 'render', error };
      }
    }
  }
  return results as Array<AnalysedImage<Id>>;
}

async function forward(
  model: LoadedModel,
  inputs: Float32Array[],
  mode: AnalysisMode,
): Promise<Array<{ classification: Classification; explanation?: Explanation }>> {
  const { classes, preprocessing } = model.manifest;
  const batch = inputBatch(inputs, preprocessing);
  try {
    if (mode.kind === 'explain') {
      const explanations = await mode.lrp.explain(batch, mode.target);
      return explanations.map((perImage) => {
        const first = perImage[0];
        return first === undefined
          ? undefined
          : { classification: classificationFromLogits(classes, first.logits), explanation: first };
      }) as Array<{ classification: Classification; explanation?: Explanation }>;
    }
    const logits = model.network.logits(batch);
    try {
      const values = await logits.data();
      const n = classes.length;
      return inputs.map((_, i) => ({
        classification: classificationFromLogits(classes, Array.from(values.subarray(i * n, (i + 1) * n))),
      }));
    } finally {
      logits.dispose();
    }
  } finally {
    batch.dispose();
  }
}

function drawHeatmap(
  model: LoadedModel,
  image: DecodedImage,
  classification: Classification,
  explanation: Explanation,
  lrp: DenseNetLrp,
  options: HeatmapRenderOptions = {},
): ImageHeatmap {
  const { manifest } = model;
  // The parameters the engine ran with, every rule's: the SC's DerivationDescription and the SR name them all.
  const summary: ExplanationSummary = {
    targetClass: explanation.targetClass,
    composite: explanation.composite,
    parameters: describeLrpParameters(lrp.options),
  };
  const overlay = renderHeatmapOfImage(
    image,
    classification,
    { ...summary, relevance: explanation.relevance },
    {
      name: manifest.name,
      version: manifest.version,
      intendedUse: manifest.intendedUse,
      preprocessing: manifest.preprocessing,
    },
    options,
  );
  return { explanation, summary, overlay };
}
