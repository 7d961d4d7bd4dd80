import * as tf from '@tensorflow/tfjs';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { GatewayError, describeError } from '../errors.js';
import { classificationFromLogits, type BatchRunner, type Classification } from './batch-runner.js';
import { preprocess } from '../imaging/preprocess.js';
import { loadImage } from '../imaging/read-image.js';
import type { DecodedImage } from '../imaging/decoded-image.js';
import type { DenseNetLrp, ExplainTarget } from '../lrp/densenet-lrp.js';
import { renderHeatmapOfImage } from '../reporting/render-heatmap.js';
import { outputModelInfo } from '../reporting/report-inputs.js';
import { writeSecondaryCapture, type DerivedObject } from '../reporting/secondary-capture.js';
import { writeStructuredReport } from '../reporting/structured-report.js';
import { writeFileAtomic } from '../store/atomic-file.js';
import { isOutOfSpace } from '../store/out-of-resources.js';
import type { StageMs } from '../logging/stage-timings.js';

/**
 * The code of an image whose outputs could not be written for lack of disk space: not a failure of the
 * image; the pipeline keeps it pending and tries again once space is back.
 */
export const NO_SPACE = 'NO_SPACE';

export type OutputKind = 'sc' | 'sr';

export interface OutputObject {
  kind: OutputKind;
  path: string;
  sopClassUid: string;
  sopInstanceUid: string;
  seriesInstanceUid: string;
}

export interface ImageWorkRequest {
  images: Array<{ sopInstanceUid: string; path: string }>;
  outputs: OutputKind[];
  revision: number;
  /** ISO time the results are stamped with: the same for every image of a job. */
  createdAt: string;
  /** Folder for this job's objects (the spool's outputs/<study>/r<revision>). */
  outDir: string;
  target: ExplainTarget;
  usageNotice: string;
}

export interface ExplanationFacts {
  targetClass: string;
  composite: string;
  logit: number;
  relevanceSum: number;
  absorbedShare: number;
}

export type ImageWorkResult =
  | {
      sopInstanceUid: string;
      kind: 'written';
      classification: Classification;
      explanation: ExplanationFacts;
      outputs: OutputObject[];
      /** Milliseconds per stage for this image; a batch's explanation (forward pass and LRP) is shared out evenly. */
      stageMs: StageMs;
    }
  | { sopInstanceUid: string; kind: 'failed'; code: string; reason: string };

/**
 * Infer -> explain -> render -> write for a batch of one job's images, inside an inference worker (the
 * model and the LRP engine live there). Objects are written to the job's output folder atomically; their
 * UIDs are deterministic, so a job resumed after a crash writes the very same files again.
 */
export async function processImages(runner: BatchRunner, lrp: DenseNetLrp, request: ImageWorkRequest): Promise<ImageWorkResult[]> {
  const manifest = runner.model.manifest;
  const results: ImageWorkResult[] = [];
  const ready: Array<{ sopInstanceUid: string; bytes: Buffer; image: DecodedImage; input: Float32Array; decodeMs: number }> = [];
  for (const item of request.images) {
    try {
      const started = performance.now();
      const bytes = readFileSync(item.path);
      const image = await loadImage(bytes);
      const input = preprocess(image, manifest.preprocessing).data;
      ready.push({ sopInstanceUid: item.sopInstanceUid, bytes, image, input, decodeMs: performance.now() - started });
    } catch (error) {
      results.push(failure(item.sopInstanceUid, error));
    }
  }
  if (ready.length === 0) return results;
  // One pass gives both: the explanation's forward pass yields every class's logits, so the classification
  // needs no forward pass of its own, and the explained 'predicted' class is the reported one by construction.
  const explainStarted = performance.now();
  const size = manifest.preprocessing.inputSize;
  const channels = manifest.preprocessing.channels;
  const batch = tf.tidy(() => {
    const x = tf.tensor4d(concat(ready.map((r) => r.input)), [ready.length, size, size, channels]);
    return (channels === 3 ? x : tf.tile(x, [1, 1, 1, 3])) as tf.Tensor4D;
  });
  let explanations;
  try {
    explanations = await lrp.explain(batch, request.target);
  } finally {
    batch.dispose();
  }
  const classifications = explanations.map((perImage) => (perImage[0] ? classificationFromLogits(manifest.classes, perImage[0].logits) : undefined));
  const explainMs = (performance.now() - explainStarted) / ready.length;
  const model = outputModelInfo(manifest);
  const createdAt = new Date(request.createdAt);
  const supersedes = request.revision > 0 ? { supersedesRevision: request.revision - 1 } : {};
  for (const [i, r] of ready.entries()) {
    const classification = classifications[i];
    const explanation = explanations[i]?.[0];
    const writeStarted = performance.now();
    try {
      if (classification === undefined || explanation === undefined) throw new Error('no result for the image');
      const summary = { targetClass: explanation.targetClass, composite: explanation.composite, parameters: `epsilon ${explanation.parameters.epsilon}` };
      const overlay = renderHeatmapOfImage(
        r.image,
        classification,
        { ...summary, relevance: explanation.relevance },
        { name: manifest.name, version: manifest.version, intendedUse: manifest.intendedUse, preprocessing: manifest.preprocessing },
        { usageNotice: request.usageNotice },
      );
      const objects: Array<{ kind: OutputKind; object: DerivedObject }> = [];
      const sc = writeSecondaryCapture({
        source: r.bytes,
        image: overlay.image,
        model,
        classification,
        explanation: summary,
        revision: request.revision,
        createdAt,
        usageNotice: request.usageNotice,
        ...supersedes,
      });
      if (request.outputs.includes('sc')) objects.push({ kind: 'sc', object: sc });
      if (request.outputs.includes('sr')) {
        const heatmaps = request.outputs.includes('sc') ? [sc] : [];
        objects.push({
          kind: 'sr',
          object: writeStructuredReport({ source: r.bytes, model, classification, explanation: summary, heatmaps, revision: request.revision, createdAt, usageNotice: request.usageNotice, ...supersedes }),
        });
      }
      const outputs: OutputObject[] = [];
      for (const { kind, object } of objects) {
        const name = `${object.sopInstanceUid}.dcm`;
        await writeFileAtomic(request.outDir, name, object.bytes);
        outputs.push({ kind, path: path.join(request.outDir, name), sopClassUid: object.sopClassUid, sopInstanceUid: object.sopInstanceUid, seriesInstanceUid: object.seriesInstanceUid });
      }
      results.push({
        sopInstanceUid: r.sopInstanceUid,
        kind: 'written',
        classification,
        explanation: {
          targetClass: explanation.targetClass,
          composite: explanation.composite,
          logit: explanation.logit,
          relevanceSum: explanation.relevanceSum,
          absorbedShare: explanation.absorbedShare,
        },
        outputs,
        stageMs: { decode: r.decodeMs, explain: explainMs, write: performance.now() - writeStarted },
      });
    } catch (error) {
      results.push(failure(r.sopInstanceUid, error));
    }
  }
  return results;
}

function failure(sopInstanceUid: string, error: unknown): ImageWorkResult {
  if (isOutOfSpace(error)) return { sopInstanceUid, kind: 'failed', code: NO_SPACE, reason: `no disk space for its outputs: ${describeError(error)}` };
  return { sopInstanceUid, kind: 'failed', code: error instanceof GatewayError ? error.code : 'PROCESSING_FAILED', reason: describeError(error) };
}

function concat(parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
