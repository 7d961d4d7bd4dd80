// Shared pieces of the in-process pipeline tests (a real SQLite job store, a stand-in inference pool): the
// configuration with one chest rule, a stored instance as the store records it, and a written image result.
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ImageWorkResult } from '../../src/analysis/image-work.js';
import { configSchema, type GatewayConfig } from '../../src/config/schema.js';
import { JobStore } from '../../src/store/job-store.js';
import type { PipelineStore } from '../../src/store/pipeline-store.js';
import { tinyModelDir } from './tiny-densenet.js';
import { receivedInstance } from './received-instance.js';

/** One model ('tiny'), folder PACS and RIS that are never written (the tests' targets stand in), one DX rule. */
export function chestPipelineConfig(inference: Record<string, unknown> = {}): GatewayConfig {
  return configSchema.parse({
    models: { tiny: tinyModelDir() },
    inference: { defaultModel: 'tiny', ...inference },
    destinations: {
      pacs: [{ type: 'folder', name: 'pacs', path: '/nonexistent' }],
      ris: [{ type: 'folder', name: 'ris', path: '/nonexistent' }],
    },
    rules: [
      {
        name: 'chest',
        match: { attributes: { Modality: { oneOf: ['DX'] } } },
        action: { model: 'tiny', outputs: ['sc'], pacs: ['pacs'], ris: ['ris'] },
      },
    ],
  });
}

export function openTestStore(prefix: string): JobStore {
  return JobStore.open(path.join(mkdtempSync(path.join(os.tmpdir(), prefix)), 'db.sqlite'));
}

interface StoredImageFile {
  sopInstanceUid: string;
  sopClassUid: string;
  studyInstanceUid: string;
  seriesInstanceUid: string;
  transferSyntaxUid: string;
  path: string;
  bytes: Buffer;
}

/** Records a written test image as the store does after a C-STORE from 'DX1' (a frontal chest DX). */
export function recordTestInstance(store: JobStore, image: StoredImageFile, receivedAt: number): void {
  store.recordInstance({
    sopInstanceUid: image.sopInstanceUid,
    sopClassUid: image.sopClassUid,
    studyInstanceUid: image.studyInstanceUid,
    seriesInstanceUid: image.seriesInstanceUid,
    transferSyntaxUid: image.transferSyntaxUid,
    path: image.path,
    sizeBytes: image.bytes.length,
    callingAe: 'DX1',
    calledAe: 'CXR_GATEWAY',
    sourceIp: '127.0.0.1',
    associationId: 'a1',
    attributes: { modality: 'DX', bodyPartExamined: 'CHEST', viewPosition: 'PA' },
    receivedAt,
  });
}

/** What a worker answers for an image it classified and explained (no output files: the tests' targets stand in). */
export function writtenResult(sopInstanceUid: string): ImageWorkResult {
  return {
    sopInstanceUid,
    kind: 'written',
    classification: {
      classes: ['normal', 'abnormal'],
      probabilities: [0.3, 0.7],
      logits: [0, 0.85],
      predicted: 'abnormal',
    },
    explanation: { targetClass: 'abnormal', composite: 'isnet', logit: 0.85, relevanceSum: 0.8, absorbedShare: 0.05 },
    outputs: [],
    stageMs: {},
  };
}

/**
 * A job whose images are already written and whose deliveries are queued (what the delivery stage starts from):
 * one stored instance of `studyInstanceUid`, its job routed and finished with a PACS delivery per `pacs` name and a
 * RIS delivery per `ris` name. Returns the job id.
 */
export function queueDeliveryJob(
  store: JobStore,
  pipelineStore: PipelineStore,
  job: { studyInstanceUid: string; dir: string; clock: number; pacs?: string[]; ris?: string[] },
): number {
  const { studyInstanceUid, clock } = job;
  store.recordInstance(
    receivedInstance(studyInstanceUid, clock, {
      sopInstanceUid: `${studyInstanceUid}.1`,
      path: path.join(job.dir, `${studyInstanceUid}.dcm`),
    }),
  );
  const [ready] = store.promoteQuietStudies(clock, clock);
  if (ready === undefined) throw new Error('no job became ready');
  pipelineStore.routeJob(ready.jobId, { rule: 'r', action: '{}', priority: 'normal', images: [] }, clock);
  pipelineStore.finishProcessing(
    ready.jobId,
    {
      deliveries: [
        ...(job.pacs ?? []).map((destination) => ({
          kind: 'pacs' as const,
          destination,
          payload: JSON.stringify({ kind: 'pacs', files: [] }),
        })),
        ...(job.ris ?? []).map((destination) => ({
          kind: 'ris' as const,
          destination,
          payload: JSON.stringify({ kind: 'ris', file: '/x.hl7', controlId: 'C1' }),
        })),
      ],
    },
    clock,
  );
  return ready.jobId;
}
