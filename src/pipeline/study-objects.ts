// The objects a study revision gets once, not per image: the classification SR covering every image, and, for a
// corrected revision, the IHE IOCM rejection note that withdraws what the revision it replaces sent. Also the
// stable order of a job's images, which numbers their heatmaps in the one heatmap series.

import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { ImageWorkResult } from '../analysis/image-work.js';
import { studyInstanceUid, derivedSeriesUid } from '../reporting/derived-uids.js';
import { writeRejectionNote } from '../reporting/rejection-note.js';
import type { OutputModelInfo } from '../reporting/report-inputs.js';
import type { DerivedObject } from '../reporting/secondary-capture.js';
import { readSourceInstance } from '../reporting/source-instance.js';
import {
  COMPREHENSIVE_SR_SOP_CLASS_UID,
  writeStructuredReport,
  type ObjectRef,
} from '../reporting/structured-report.js';
import { readDatasetAttributes } from '../routing/dataset-attributes.js';
import type { PipelineStore } from '../store/pipeline-store.js';
import { storedPayload, storedResult } from './stored-columns.js';

type Written = Extract<ImageWorkResult, { kind: 'written' }>;

/** A study revision's output folder under the spool's outputs (the worker writes the SCs there too). */
export function revisionDir(outputsDir: string, studyInstanceUid: string, revision: number): string {
  return path.join(outputsDir, studyInstanceUid, `r${revision}`);
}

/**
 * 1-based positions of a job's images, stable across re-runs and revisions: by the source's Series Number, then
 * Instance Number (numerically; an image without one after those with one), then SOP Instance UID. An image whose
 * header cannot be read sorts as if it had neither number (its failure is reported where it is processed).
 */
export function imagePositions(images: ReadonlyArray<{ sopInstanceUid: string; path: string }>): Map<string, number> {
  const numberOf = (values: readonly string[] | undefined): number => {
    const n = Number(values?.[0]?.trim() ?? '');
    return values?.[0]?.trim() && Number.isFinite(n) ? n : Number.POSITIVE_INFINITY;
  };
  const keyed = images.map((image) => {
    try {
      const attribute = readDatasetAttributes(image.path);
      return {
        sop: image.sopInstanceUid,
        series: numberOf(attribute('00200011')),
        instance: numberOf(attribute('00200013')),
      };
    } catch {
      return { sop: image.sopInstanceUid, series: Number.POSITIVE_INFINITY, instance: Number.POSITIVE_INFINITY };
    }
  });
  const compare = (a: number, b: number) => (a === b ? 0 : a < b ? -1 : 1);
  keyed.sort(
    (a, b) =>
      compare(a.series, b.series) || compare(a.instance, b.instance) || (a.sop < b.sop ? -1 : a.sop > b.sop ? 1 : 0),
  );
  return new Map(keyed.map((k, i) => [k.sop, i + 1]));
}

/** What an earlier revision sent to the PACS and a corrected revision withdraws. */
export interface SupersededRevision {
  revision: number;
  /** Every object of that revision in its PACS deliveries (heatmaps first, then its SR), without its own rejection note. */
  objects: ObjectRef[];
  /** Its classification SR, when it sent one: the new SR's predecessor. */
  sr: ObjectRef | undefined;
}

/**
 * The latest earlier revision of the study that queued objects for a PACS, and those objects: the heatmaps its
 * images' results name and the SR derived for it (same key as when it was written), each kept only when its file
 * is in that revision's PACS deliveries, so the list is what was sent, not what might have been. Undefined for a
 * first revision, or when no earlier revision sent anything.
 */
export function supersededRevision(
  store: PipelineStore,
  outputsDir: string,
  studyUid: string,
  revision: number,
): SupersededRevision | undefined {
  for (const earlier of store.earlierJobs(studyUid, revision)) {
    const sent = new Set(
      store
        .deliveries(earlier.jobId)
        .filter((d) => d.kind === 'pacs')
        .flatMap((d) => {
          const payload = storedPayload(d);
          return payload.kind === 'pacs' ? payload.files : [];
        }),
    );
    if (sent.size === 0) continue;
    const results = store.jobImages(earlier.jobId).flatMap((i) => (i.state === 'written' ? [storedResult(i)] : []));
    const candidates: Array<ObjectRef & { path: string }> = results.flatMap((r) => r.outputs);
    const model = results.find((r) => r.model !== undefined)?.model;
    let sr: ObjectRef | undefined;
    if (model !== undefined) {
      const key = { studyInstanceUid: studyUid, model, kind: 'classification-sr' as const, revision: earlier.revision };
      const derived = {
        sopClassUid: COMPREHENSIVE_SR_SOP_CLASS_UID,
        sopInstanceUid: studyInstanceUid(key),
        seriesInstanceUid: derivedSeriesUid(key),
      };
      const file = path.join(revisionDir(outputsDir, studyUid, earlier.revision), `${derived.sopInstanceUid}.dcm`);
      if (sent.has(file)) {
        sr = derived;
        candidates.push({ ...derived, path: file });
      }
    }
    const objects = candidates
      .filter((c) => sent.has(c.path))
      .map(({ sopClassUid, sopInstanceUid, seriesInstanceUid }) => ({
        sopClassUid,
        sopInstanceUid,
        seriesInstanceUid,
      }));
    if (objects.length === 0) continue;
    return { revision: earlier.revision, objects, sr };
  }
  return undefined;
}

export interface StudyObjectsInput {
  /** The revision's written image results, in their heatmap series' order. */
  results: readonly Written[];
  /** Each result's source file, by SOP Instance UID. */
  sourcePaths: ReadonlyMap<string, string>;
  model: OutputModelInfo;
  revision: number;
  superseded: SupersededRevision | undefined;
  /** Whether the job's outputs include the SR. */
  withSr: boolean;
  createdAt: Date;
  usageNotice: string;
}

/** The SR (when asked for) and the rejection note (when the revision supersedes one that sent objects). */
export async function studyObjects(
  input: StudyObjectsInput,
): Promise<{ sr: DerivedObject | undefined; rejection: DerivedObject | undefined }> {
  const { results, superseded } = input;
  if (!input.withSr && superseded === undefined) return { sr: undefined, rejection: undefined };
  const sources = [];
  // The SR needs every image's attributes; the rejection note only the study's (from the first image).
  for (const r of input.withSr ? results : results.slice(0, 1)) {
    const file = input.sourcePaths.get(r.sopInstanceUid);
    if (file === undefined) continue;
    sources.push({ result: r, source: readSourceInstance(await readFile(file)) });
  }
  const first = sources[0];
  if (first === undefined) return { sr: undefined, rejection: undefined };
  const supersedes = superseded === undefined ? {} : { supersedesRevision: superseded.revision };
  const sr = input.withSr
    ? writeStructuredReport({
        images: sources.map(({ result, source }) => {
          const heatmap = result.outputs.find((o) => o.kind === 'sc');
          const { targetClass, composite, parameters } = result.explanation;
          return {
            source,
            classification: result.classification,
            explanation: { targetClass, composite, ...(parameters === undefined ? {} : { parameters }) },
            ...(heatmap === undefined
              ? {}
              : {
                  heatmap: {
                    sopClassUid: heatmap.sopClassUid,
                    sopInstanceUid: heatmap.sopInstanceUid,
                    seriesInstanceUid: heatmap.seriesInstanceUid,
                  },
                }),
          };
        }),
        model: input.model,
        revision: input.revision,
        ...supersedes,
        ...(superseded?.sr === undefined ? {} : { predecessor: superseded.sr }),
        createdAt: input.createdAt,
        usageNotice: input.usageNotice,
      })
    : undefined;
  const rejection =
    superseded === undefined
      ? undefined
      : writeRejectionNote({
          source: first.source,
          model: input.model,
          revision: input.revision,
          rejectedRevision: superseded.revision,
          rejected: superseded.objects,
          createdAt: input.createdAt,
        });
  return { sr, rejection };
}
