// `cxr-gateway render FILE.dcm --png OUT`: classify one image, explain the decision with LRP and write the
// heatmap picture the PACS would receive, as a PNG to look at. The same decoding, preprocessing, network, LRP and
// rendering the daemon uses, in-process, so what an admin sees here is what the radiologist will see.

import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { GatewayConfig } from '../config/schema.js';
import { loadConfig, modelDirectory, resolveConfigPath } from '../config/load-config.js';
import { GatewayError } from '../errors.js';
import { analyseImages } from '../analysis/analyse-images.js';
import type { Classification } from '../analysis/batch-runner.js';
import { engineSettings } from '../analysis/engine-options.js';
import type { InferenceEngine } from '../engines/engine.js';
import type { EnginePreference } from '../engines/engine-types.js';
import { createEngine } from '../engines/select-engine.js';
import { COMPOSITE_NAMES, type CompositeName } from '../lrp/composites.js';
import { createLogger } from '../logging/logger.js';
import type { OverlayLayout } from '../reporting/heatmap-overlay.js';
import { encodePng } from '../reporting/png-encoder.js';
import { DEFAULT_USAGE_NOTICE, outputModelInfo } from '../reporting/report-inputs.js';
import { writeSecondaryCapture } from '../reporting/secondary-capture.js';
import { prepareScEncoding } from '../reporting/sc-encoding.js';
import type { ScEncodingOptions } from '../reporting/sc-encoding-types.js';
import { parseEngineOption } from './classify-command.js';

export const RENDER_USAGE = `  cxr-gateway render FILE.dcm --png OUT.png [--sc OUT.dcm] [--model DIR] [--layout overlay|side-by-side]
                    [--composite isnet|epsilon|epsilon-plus-flat|epsilon-gamma-box] [--target CLASS]
                    [--max-edge PIXELS] [--engine auto|onnxruntime|tfjs] [--config FILE] [--json]
                                             classify one image and write its LRP heatmap as a PNG
                                             (--sc: also as the Secondary Capture the PACS would get)`;

export interface RenderFileOptions {
  file: string;
  /** Where to write the picture as a PNG; at least one of png and sc. */
  png?: string;
  /**
   * Where to write the picture as the daemon's Secondary Capture of it (revision 0; the same UIDs the daemon
   * derives, so a PACS that already has the daemon's treats this as the same object).
   */
  sc?: string;
  /** Model directory; default: the config's default model. */
  modelDir?: string;
  layout?: OverlayLayout;
  /** Default: the config's explain.composite. */
  composite?: CompositeName;
  /** Class to explain; default: the config's explain.target ('predicted' unless configured otherwise). */
  target?: string;
  /** Longest edge of each picture panel (default 2048). */
  maxEdge?: number;
  /** Default: the config's inference.engine. */
  engine?: EnginePreference;
}

export interface RenderReport {
  file: string;
  png?: string;
  sc?: string;
  /** The engine and its device (tfjs backend or ONNX Runtime execution provider). */
  engine: string;
  device: string;
  /** engine/device, as the daemon's health page shows it. */
  backend: string;
  predicted: string;
  probabilities: Record<string, number>;
  explainedClass: string;
  composite: CompositeName;
  /** Every rule's parameters, as the SC and SR record them: "epsilon 0.01, alpha 2, beta 1". */
  parameters: string;
  rows: number;
  columns: number;
  /** Milliseconds per stage. decode: pixels and preprocessing; explain: the forward pass (classification) and LRP together. */
  timings: { decode: number; explain: number; render: number; png: number; sc: number };
}

/** Classify + explain + render one file to a PNG. Exported for tests and scripts; `renderCommand` is the CLI. */
export async function renderFile(options: RenderFileOptions, config: GatewayConfig): Promise<RenderReport> {
  const target = options.target ?? config.explain.target;
  if (target === 'all') {
    throw new GatewayError(
      'USAGE',
      "render draws one heatmap; explain.target is 'all', so name the class with --target CLASS",
    );
  }
  const settings = engineSettings(config, options.engine);
  // stdout is the answer: the engine's choice goes to stderr, as log lines (shown with logging.level debug).
  const logger = createLogger({
    level: config.logging.level === 'debug' ? 'debug' : 'warn',
    format: 'auto',
    stream: process.stderr,
  });
  const engine = await createEngine({
    modelDir: options.modelDir ?? modelDirectory(config),
    ...settings,
    lrp: { ...settings.lrp, ...(options.composite === undefined ? {} : { composite: options.composite }) },
    log: (message, fields) => logger.info(message, fields),
  });
  try {
    return await explainAndRender(engine, options, target, config.secondaryCapture);
  } finally {
    await engine.dispose();
  }
}

async function explainAndRender(
  engine: InferenceEngine,
  options: RenderFileOptions,
  target: string,
  scEncoding: ScEncodingOptions,
): Promise<RenderReport> {
  const { manifest } = engine;
  if (target !== 'predicted' && !manifest.classes.includes(target)) {
    throw new GatewayError(
      'USAGE',
      `--target '${target}' is not a class of ${manifest.name}; its classes are ${manifest.classes.join(', ')}`,
    );
  }
  // The daemon's own path (analysis/analyse-images.ts): decode, preprocess, one forward pass with LRP, picture.
  const [result] = await analyseImages(engine, [{ id: options.file, path: options.file }], {
    kind: 'explain',
    target,
    heatmap: {
      layout: options.layout ?? 'overlay',
      ...(options.maxEdge === undefined ? {} : { maxEdge: options.maxEdge }),
    },
  });
  if (result === undefined) throw new GatewayError('INTERNAL', 'the analysis returned no result');
  if (result.kind === 'failed') throw result.error;
  const { classification, heatmap } = result;
  if (heatmap === undefined) throw new GatewayError('INTERNAL', 'the analysis returned no heatmap');
  const image = heatmap.overlay.image;
  const t0 = performance.now();
  if (options.png !== undefined) writeFileSync(options.png, encodePng(image));
  const t1 = performance.now();
  if (options.sc !== undefined) {
    // What the daemon writes for this image as the first result of its study (revision 0), stamped now, in the
    // config's secondaryCapture encoding.
    await prepareScEncoding(scEncoding.encoding);
    const sc = writeSecondaryCapture({
      source: result.bytes,
      image,
      model: outputModelInfo(manifest),
      classification,
      explanation: heatmap.summary,
      revision: 0,
      createdAt: new Date(),
      usageNotice: DEFAULT_USAGE_NOTICE,
      encoding: scEncoding,
    });
    writeFileSync(options.sc, sc.bytes);
  }
  const t2 = performance.now();
  return {
    file: options.file,
    ...(options.png === undefined ? {} : { png: options.png }),
    ...(options.sc === undefined ? {} : { sc: options.sc }),
    engine: engine.info.engine,
    device: engine.info.device,
    backend: `${engine.info.engine}/${engine.info.device}`,
    predicted: classification.predicted,
    probabilities: byClass(classification),
    explainedClass: heatmap.explanation.targetClass,
    composite: engine.lrpOptions.composite,
    parameters: heatmap.summary.parameters ?? '',
    rows: image.rows,
    columns: image.columns,
    timings: {
      decode: ms(result.stageMs.decode),
      explain: ms(result.stageMs.explain),
      render: ms(result.stageMs.render),
      png: ms(t1 - t0),
      sc: ms(t2 - t1),
    },
  };
}

function byClass(c: Classification): Record<string, number> {
  return Object.fromEntries(c.classes.map((name, i) => [name, Number((c.probabilities[i] ?? 0).toFixed(4))]));
}

function ms(v: number): number {
  return Math.round(v);
}

export function formatRenderReport(r: RenderReport): string {
  const p = Object.entries(r.probabilities)
    .map(([name, value]) => `${name} ${value.toFixed(3)}`)
    .join(', ');
  const t = r.timings;
  return (
    `${r.file}: ${r.predicted}  (${p})\n` +
    `heatmap for ${r.explainedClass} (LRP ${r.composite}, ${r.backend}) -> ${[r.png, r.sc].filter((f) => f !== undefined).join(', ')}  ${r.columns} x ${r.rows}\n` +
    `LRP parameters: ${r.parameters}\n` +
    `time: decode ${t.decode} ms, classify + explain ${t.explain} ms, render ${t.render} ms, png ${t.png} ms, sc ${t.sc} ms\n`
  );
}

export interface CommandIo {
  stdout: { write(text: string): unknown };
  env: NodeJS.ProcessEnv;
}

/**
 * The `render` command: parses its own arguments (everything after `render`) and returns the exit code.
 * Failures leave as GatewayError, like the other commands.
 */
export async function renderCommand(
  args: readonly string[],
  io: CommandIo = { stdout: process.stdout, env: process.env },
): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...args],
      allowPositionals: true,
      options: {
        png: { type: 'string' },
        sc: { type: 'string' },
        model: { type: 'string', short: 'm' },
        layout: { type: 'string', default: 'overlay' },
        composite: { type: 'string' },
        target: { type: 'string' },
        'max-edge': { type: 'string' },
        engine: { type: 'string' },
        config: { type: 'string', short: 'c' },
        json: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
  } catch (error) {
    throw new GatewayError('USAGE', `${error instanceof Error ? error.message : String(error)}\n${RENDER_USAGE}`);
  }
  const { values, positionals } = parsed;
  if (values.help) {
    io.stdout.write(`Usage:\n${RENDER_USAGE}\n`);
    return 0;
  }
  const [file, ...extra] = positionals;
  if (file === undefined || extra.length > 0)
    throw new GatewayError('USAGE', `render takes exactly one DICOM file\n${RENDER_USAGE}`);
  if (values.png === undefined && values.sc === undefined)
    throw new GatewayError('USAGE', `render needs --png OUT.png (or --sc OUT.dcm)\n${RENDER_USAGE}`);
  const layout = values.layout;
  if (layout !== 'overlay' && layout !== 'side-by-side')
    throw new GatewayError('USAGE', `--layout must be overlay or side-by-side, got '${layout}'`);
  const composite = values.composite;
  if (composite !== undefined && !isComposite(composite)) {
    throw new GatewayError('USAGE', `--composite must be one of ${COMPOSITE_NAMES.join(', ')}, got '${composite}'`);
  }
  let maxEdge: number | undefined;
  if (values['max-edge'] !== undefined) {
    maxEdge = Number(values['max-edge']);
    if (!Number.isInteger(maxEdge))
      throw new GatewayError('USAGE', `--max-edge must be a whole number of pixels, got '${values['max-edge']}'`);
  }
  const engine = parseEngineOption(values.engine);
  const { config } = loadConfig(resolveConfigPath(values.config, io.env));
  const report = await renderFile(
    {
      file,
      ...(values.png === undefined ? {} : { png: values.png }),
      ...(values.sc === undefined ? {} : { sc: values.sc }),
      layout,
      ...(values.model === undefined ? {} : { modelDir: values.model }),
      ...(composite === undefined ? {} : { composite }),
      ...(values.target === undefined ? {} : { target: values.target }),
      ...(maxEdge === undefined ? {} : { maxEdge }),
      ...(engine === undefined ? {} : { engine }),
    },
    config,
  );
  io.stdout.write(values.json ? `${JSON.stringify(report, null, 2)}\n` : formatRenderReport(report));
  return 0;
}

function isComposite(name: string): name is CompositeName {
  return (COMPOSITE_NAMES as readonly string[]).includes(name);
}
