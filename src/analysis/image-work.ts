import path from 'node:path';
import { GatewayError, describeError, errorCode, type ErrorCode } from '../errors.js';
import type { InferenceEngine } from '../engines/engine.js';
import type { ExplainTarget } from '../lrp/explanation.js';
import { outputModelInfo } from '../reporting/report-inputs.js';
import { analyseImages } from './analyse-images.js';
import type { Classification } from './batch-runner.js';
import { writeSecondaryCapture, type DerivedObject, type ScDownscale } from '../reporting/secondary-capture.js';
import { prepareScEncoding } from '../reporting/sc-encoding.js';
import type { ScEncodingOptions } from '../reporting/sc-encoding-types.js';
import { writeFileAtomic } from '../store/atomic-file.js';
import { isOutOfSpace } from '../store/out-of-resources.js';
import type { StageMs } from '../logging/stage-timings.js';

/**
 * The code of an image whose outputs could not be written for lack of disk space: not a failure of the
 * image; the pipeline keeps it pending and tries again once space is back.
 */
export const NO_SPACE = 'NO_SPACE' satisfies ErrorCode;

export type OutputKind = 'sc' | 'sr';

export interface OutputObject {
  kind: OutputKind;
  path: string;
  sopClassUid: string;
  sopInstanceUid: string;
  seriesInstanceUid: string;
  /** An SC scaled down to fit secondaryCapture.maxBytes: the pipeline logs it. */
  downscaled?: ScDownscale;
}

export interface ImageWorkRequest {
  /**
   * `instanceNumber`: the image's place in its job (1-based, stable: the pipeline orders the job's images), its
   * Instance Number in the study's one heatmap series; the source's own when left out.
   */
  images: Array<{ sopInstanceUid: string; path: string; instanceNumber?: number }>;
  /** The worker writes the heatmap SC when this holds 'sc'; the study's SR is written by the pipeline, once. */
  outputs: OutputKind[];
  revision: number;
  /** The earlier revision these results replace (its series then say they are a correction). */
  supersedesRevision?: number;
  /** ISO time the results are stamped with: the same for every image of a job. */
  createdAt: string;
  /** Folder for this job's objects (the spool's outputs/<study>/r<revision>). */
  outDir: string;
  target: ExplainTarget;
  usageNotice: string;
  /** The heatmap SC's transfer syntax and size cap (config secondaryCapture); explicit-le, no cap when left out. */
  scEncoding?: ScEncodingOptions;
}

export interface ExplanationFacts {
  targetClass: string;
  composite: string;
  /** The rules' parameters as text (describeLrpParameters), for the SR the pipeline writes. */
  parameters?: string;
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
      /**
       * The model that made the outputs (part of their derived UIDs): the study's SR and rejection note are derived
       * from it. Absent in results stored before it was recorded.
       */
      model?: { modelUid: string; version: string };
      outputs: OutputObject[];
      /** Milliseconds per stage for this image; a batch's explanation (forward pass and LRP) is shared out evenly. */
      stageMs: StageMs;
    }
  | { sopInstanceUid: string; kind: 'failed'; code: ErrorCode; reason: string };

/**
 * Infer -> explain -> render (analyseImages, the path `render` and `classify` share) -> write, for a batch of one
 * job's images, inside an inference worker. Objects are written to the job's output folder atomically; their
 * UIDs are deterministic, so a job resumed after a crash writes the very same files again.
 */
export async function processImages(engine: InferenceEngine, request: ImageWorkRequest): Promise<ImageWorkResult[]> {
  const analysed = await analyseImages(
    engine,
    request.images.map((i) => ({ id: i.sopInstanceUid, path: i.path })),
    {
      kind: 'explain',
      target: request.target,
      heatmap: { usageNotice: request.usageNotice },
    },
  );
  const model = outputModelInfo(engine.manifest);
  const createdAt = new Date(request.createdAt);
  const supersedes = request.supersedesRevision === undefined ? {} : { supersedesRevision: request.supersedesRevision };
  const instanceNumbers = new Map(request.images.map((i) => [i.sopInstanceUid, i.instanceNumber]));
  const results: ImageWorkResult[] = [];
  for (const r of analysed) {
    if (r.kind === 'failed') {
      results.push(failure(r.id, r.error));
      continue;
    }
    const writeStarted = performance.now();
    try {
      const { classification, heatmap } = r;
      if (heatmap === undefined) throw new GatewayError('INTERNAL', 'the analysis returned no heatmap for the image');
      const { explanation, summary, overlay } = heatmap;
      const objects: Array<{ kind: OutputKind; object: DerivedObject }> = [];
      if (request.outputs.includes('sc')) {
        if (request.scEncoding !== undefined) await prepareScEncoding(request.scEncoding.encoding);
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
          ...(instanceNumbers.get(r.id) === undefined ? {} : { instanceNumber: instanceNumbers.get(r.id) }),
          ...(request.scEncoding === undefined ? {} : { encoding: request.scEncoding }),
        });
        objects.push({ kind: 'sc', object: sc });
      }
      const outputs: OutputObject[] = [];
      for (const { kind, object } of objects) {
        const name = `${object.sopInstanceUid}.dcm`;
        await writeFileAtomic(request.outDir, name, object.bytes);
        outputs.push({
          kind,
          path: path.join(request.outDir, name),
          sopClassUid: object.sopClassUid,
          sopInstanceUid: object.sopInstanceUid,
          seriesInstanceUid: object.seriesInstanceUid,
          ...(object.downscaled === undefined ? {} : { downscaled: object.downscaled }),
        });
      }
      results.push({
        sopInstanceUid: r.id,
        kind: 'written',
        classification,
        explanation: {
          targetClass: explanation.targetClass,
          composite: explanation.composite,
          ...(summary.parameters === undefined ? {} : { parameters: summary.parameters }),
          logit: explanation.logit,
          relevanceSum: explanation.relevanceSum,
          absorbedShare: explanation.absorbedShare,
        },
        model: { modelUid: model.modelUid, version: model.version },
        outputs,
        // The picture's drawing counts as writing, as it always has in /metrics.
        stageMs: {
          decode: r.stageMs.decode,
          explain: r.stageMs.explain,
          write: r.stageMs.render + performance.now() - writeStarted,
        },
      });
    } catch (error) {
      results.push(failure(r.id, error));
    }
  }
  return results;
}

function failure(sopInstanceUid: string, error: unknown): ImageWorkResult {
  if (isOutOfSpace(error))
    return {
      sopInstanceUid,
      kind: 'failed',
      code: NO_SPACE,
      reason: `no disk space for its outputs: ${describeError(error)}`,
    };
  return { sopInstanceUid, kind: 'failed', code: errorCode(error, 'PROCESSING_FAILED'), reason: describeError(error) };
}
