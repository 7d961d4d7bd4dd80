import { readFileSync } from 'node:fs';
import type { GatewayConfig } from '../config/schema.js';
import { walkStoredDataset } from '../dicom/dataset-walker.js';
import { parsePart10Header } from '../dicom/part10-header.js';
import { describeError, errorCode, GatewayError, type ErrorCode } from '../errors.js';
import { analyseImages } from '../analysis/analyse-images.js';
import type { Classification } from '../analysis/batch-runner.js';
import { engineSettings } from '../analysis/engine-options.js';
import type { EngineInfo, InferenceEngine } from '../engines/engine.js';
import { ENGINE_ORDER, type EnginePreference } from '../engines/engine-types.js';
import { createEngine } from '../engines/select-engine.js';
import { checkEligibility } from '../inference/eligibility.js';
import { createLogger } from '../logging/logger.js';

export type ClassifyReport = (
  | {
      file: string;
      status: 'classified';
      predicted: string;
      /** Full precision, as computed (the text output rounds them; scripts compare engines with these). */
      probabilities: Record<string, number>;
      logits: Record<string, number>;
    }
  | { file: string; status: 'skipped'; reason: string }
  | { file: string; status: 'failed'; code: ErrorCode; reason: string }
) & {
  /** Text of the file that could not be decoded exactly (an unknown Specific Character Set term...); never fatal. */
  textWarnings?: string[];
};

/**
 * `cxr-gateway classify FILE...`: the same eligibility the daemon applies, then the daemon's own analysis path
 * (analysis/analyse-images.ts) in-process, without the explanation: decoding, preprocessing and the forward pass,
 * on the engine the daemon would choose (or `engine`, from --engine).
 */
export async function classifyFiles(
  files: readonly string[],
  modelDir: string,
  config: GatewayConfig,
  engineChoice?: EnginePreference,
): Promise<{ reports: ClassifyReport[]; engine: EngineInfo }> {
  // stdout is the answer (--json is parsed by scripts): what libraries print goes to stderr, as log lines.
  const logger = createLogger({
    level: config.logging.level === 'debug' ? 'debug' : 'warn',
    format: 'auto',
    stream: process.stderr,
  });
  const engine = await createEngine({
    modelDir,
    ...engineSettings(config, engineChoice),
    log: (message, fields) => logger.info(message, fields),
  });
  try {
    return { reports: await classifyWith(engine, files, config), engine: engine.info };
  } finally {
    await engine.dispose();
  }
}

async function classifyWith(
  engine: InferenceEngine,
  files: readonly string[],
  config: GatewayConfig,
): Promise<ClassifyReport[]> {
  const reports: ClassifyReport[] = [];
  const eligible: Array<{ file: string; slot: number; textWarnings: string[] }> = [];
  for (const file of files) {
    try {
      const bytes = readFileSync(file);
      const { transferSyntaxUid, datasetOffset } = parsePart10Header(bytes, file);
      const { attributes, textWarnings } = walkStoredDataset(file, datasetOffset, transferSyntaxUid);
      const verdict = checkEligibility(attributes, config.inference.eligibility);
      if (!verdict.eligible) {
        reports.push({ file, status: 'skipped', reason: verdict.reason, ...warningsOf(textWarnings) });
        continue;
      }
      eligible.push({ file, slot: reports.length, textWarnings });
      reports.push({ file, status: 'failed', code: 'INTERNAL', reason: 'not analysed' }); // replaced below
    } catch (error) {
      reports.push({
        file,
        status: 'failed',
        code: errorCode(error, 'DATASET_UNREADABLE'),
        reason: describeError(error),
      });
    }
  }
  for (let i = 0; i < eligible.length; i += config.inference.maxBatch) {
    const chunk = eligible.slice(i, i + config.inference.maxBatch);
    const outcomes = await analyseImages(
      engine,
      chunk.map((c) => ({ id: c, path: c.file })),
      { kind: 'classify' },
    );
    for (const outcome of outcomes) {
      const c = outcome.id;
      const report: ClassifyReport =
        outcome.kind === 'analysed'
          ? {
              file: c.file,
              status: 'classified',
              predicted: outcome.classification.predicted,
              probabilities: byClass(outcome.classification, outcome.classification.probabilities),
              logits: byClass(outcome.classification, outcome.classification.logits),
            }
          : {
              file: c.file,
              status: 'failed',
              code: errorCode(outcome.error, 'PROCESSING_FAILED'),
              reason: describeError(outcome.error),
            };
      reports[c.slot] = { ...report, ...warningsOf(c.textWarnings) };
    }
  }
  return reports;
}

/** `--engine auto|onnxruntime|tfjs` (classify, render): undefined when not given (the config's inference.engine). */
export function parseEngineOption(value: string | undefined): EnginePreference | undefined {
  if (value === undefined) return undefined;
  const names: readonly string[] = ['auto', ...ENGINE_ORDER];
  if (!names.includes(value))
    throw new GatewayError('USAGE', `--engine must be one of ${names.join(', ')}, got '${value}'`);
  return value as EnginePreference;
}

function warningsOf(textWarnings: readonly string[]): { textWarnings?: string[] } {
  return textWarnings.length === 0 ? {} : { textWarnings: [...textWarnings] };
}

function byClass(c: Classification, values: readonly number[]): Record<string, number> {
  return Object.fromEntries(c.classes.map((name, i) => [name, values[i] ?? Number.NaN]));
}

export function formatClassifyReports(reports: readonly ClassifyReport[]): string {
  return reports
    .map((r) => {
      if (r.status === 'classified') {
        const p = Object.entries(r.probabilities)
          .map(([name, value]) => `${name} ${value.toFixed(3)}`)
          .join(', ');
        return `${r.file}: ${r.predicted}  (${p})`;
      }
      if (r.status === 'skipped') return `${r.file}: skipped: ${r.reason}`;
      return `${r.file}: FAILED [${r.code}] ${r.reason}`;
    })
    .map((line, i) => {
      const warnings = reports[i]?.textWarnings ?? [];
      return warnings.length === 0 ? line : `${line}\n  note: ${warnings.join('; ')}`;
    })
    .join('\n')
    .concat('\n');
}
