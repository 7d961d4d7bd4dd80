// Stored file -> decode -> preprocess -> forward pass (and LRP) -> heatmap picture: the one analysis path. The
// daemon's worker (image-work.ts, which then writes the SC/SR), `render` and `classify` all call analyseImages, so
// what an admin sees from the command line is what the PACS receives, pixel for pixel.

import { readFileSync } from 'node:fs';
import { errorCode, GatewayError } from '../errors.js';
import type { InferenceEngine } from '../engines/engine.js';
import type { DecodedImage } from '../imaging/decoded-image.js';
import { preprocess } from '../imaging/preprocess.js';
import { loadImage } from '../imaging/read-image.js';
import type { ExplainTarget, Explanation } from '../lrp/explanation.js';
import type { RenderedOverlay } from '../reporting/heatmap-overlay.js';
import { renderHeatmapOfImage, type HeatmapRenderOptions } from '../reporting/render-heatmap.js';
import { describeLrpParameters, type ExplanationSummary } from '../reporting/report-inputs.js';
import { classificationFromLogits, type Classification } from './batch-runner.js';

/** What to do with the images: only classify them, or classify, explain and draw the heatmap picture. */
export type AnalysisMode =
  | { kind: 'classify' }
  | {
      kind: 'explain';
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
  /**
   * The image alone failed (unreadable file or pixels, an explanation that is not finite, or a picture that could
   * not be drawn); the rest of the batch ran.
   */
  | { id: Id; kind: 'failed'; stage: 'decode' | 'explain' | 'render'; error: unknown };

/**
 * Analyses a batch of stored files with one forward pass: in 'explain' mode the LRP engine's forward pass also
 * gives every class's logits, so the classification needs no pass of its own and the explained 'predicted' class
 * is the reported one by construction. Results come back in the order of `files`. An error of the pass itself
 * (the engine failing) is thrown: it belongs to no single image. A map that is not finite (LRP_NOT_FINITE) is
 * the image's own failure: the batch is explained again image by image to find which.
 */
export async function analyseImages<Id>(
  engine: InferenceEngine,
  files: ReadonlyArray<{ id: Id; path: string }>,
  mode: AnalysisMode,
): Promise<Array<AnalysedImage<Id>>> {
  const { manifest } = engine;
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
      engine,
      ready.map((r) => r.input),
      mode,
    );
    const explainMs = (performance.now() - started) / ready.length;
    for (const [k, r] of ready.entries()) {
      const id = (files[r.slot] as { id: Id }).id;
      const pass = passes[k];
      const renderStarted = performance.now();
      if (pass instanceof Error) {
        results[r.slot] = { id, kind: 'failed', stage: 'explain', error: pass };
        continue;
      }
      try {
        if (pass === undefined) throw new GatewayError('INTERNAL', 'the forward pass returned no result for the image');
        const heatmap =
          mode.kind === 'explain' && pass.explanation !== undefined
            ? drawHeatmap(engine, r.image, pass.classification, pass.explanation, mode.heatmap)
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

type Pass = { classification: Classification; explanation?: Explanation };

/** Per image: its pass, or the LRP_NOT_FINITE error of its own explanation. */
async function forward(
  engine: InferenceEngine,
  inputs: Float32Array[],
  mode: AnalysisMode,
): Promise<Array<Pass | GatewayError | undefined>> {
  const { classes } = engine.manifest;
  if (mode.kind === 'classify') {
    const logits = await engine.classify(inputs);
    return logits.map((l) => ({ classification: classificationFromLogits(classes, l) }));
  }
  try {
    return passesOf(classes, await engine.explain(inputs, mode.target));
  } catch (error) {
    if (!notFinite(error)) throw error;
    if (inputs.length === 1) return [error];
  }
  const alone: Array<Pass | GatewayError | undefined> = [];
  for (const input of inputs) {
    try {
      alone.push(passesOf(classes, await engine.explain([input], mode.target))[0]);
    } catch (error) {
      if (!notFinite(error)) throw error;
      alone.push(error);
    }
  }
  return alone;
}

function notFinite(error: unknown): error is GatewayError {
  return errorCode(error, 'INTERNAL') === 'LRP_NOT_FINITE' && error instanceof GatewayError;
}

function passesOf(classes: readonly string[], explanations: Explanation[][]): Array<Pass | undefined> {
  return explanations.map((perImage) => {
    const first = perImage[0];
    return first === undefined
      ? undefined
      : { classification: classificationFromLogits(classes, first.logits), explanation: first };
  });
}

function drawHeatmap(
  engine: InferenceEngine,
  image: DecodedImage,
  classification: Classification,
  explanation: Explanation,
  options: HeatmapRenderOptions = {},
): ImageHeatmap {
  const { manifest } = engine;
  // The parameters the engine ran with, every rule's: the SC's DerivationDescription and the SR name them all.
  const summary: ExplanationSummary = {
    targetClass: explanation.targetClass,
    composite: explanation.composite,
    parameters: describeLrpParameters(engine.lrpOptions),
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
