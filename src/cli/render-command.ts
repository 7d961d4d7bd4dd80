// `cxr-gateway render FILE.dcm --png OUT`: classify one image, explain the decision with LRP and write the
// heatmap picture the PACS would receive, as a PNG to look at. The same decoding, preprocessing, network, LRP and
// rendering the daemon uses, in-process, so what an admin sees here is what the radiologist will see.

import * as tf from '@tensorflow/tfjs';
import { readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { GatewayConfig } from '../config/schema.js';
import { loadConfig, modelDirectory, resolveConfigPath } from '../config/load-config.js';
import { GatewayError } from '../errors.js';
import { selectBackend } from '../inference/backend.js';
import { classificationFromLogits, type Classification } from '../analysis/batch-runner.js';
import { loadModel, type LoadedModel } from '../inference/model-loader.js';
import { preprocess } from '../imaging/preprocess.js';
import { loadImage } from '../imaging/read-image.js';
import { COMPOSITE_NAMES, type CompositeName } from '../lrp/composites.js';
import { DenseNetLrp } from '../lrp/densenet-lrp.js';
import type { OverlayLayout } from '../reporting/heatmap-overlay.js';
import { encodePng } from '../reporting/png-encoder.js';
import { renderHeatmapOfImage } from '../reporting/render-heatmap.js';
import { describeLrpParameters } from '../reporting/report-inputs.js';

export const RENDER_USAGE = `  cxr-gateway render FILE.dcm --png OUT.png [--model DIR] [--layout overlay|side-by-side]
                    [--composite isnet|epsilon|epsilon-plus-flat|epsilon-gamma-box] [--target CLASS]
                    [--max-edge PIXELS] [--config FILE] [--json]
                                             classify one image and write its LRP heatmap as a PNG`;

export interface RenderFileOptions {
  file: string;
  png: string;
  /** Model directory; default: the config's default model. */
  modelDir?: string;
  layout?: OverlayLayout;
  /** Default: the config's explain.composite. */
  composite?: CompositeName;
  /** Class to explain; default: the config's explain.target ('predicted' unless configured otherwise). */
  target?: string;
  /** Longest edge of each picture panel (default 2048). */
  maxEdge?: number;
}

export interface RenderReport {
  file: string;
  png: string;
  backend: string;
  predicted: string;
  probabilities: Record<string, number>;
  explainedClass: string;
  composite: CompositeName;
  rows: number;
  columns: number;
  /** Milliseconds per stage. */
  /** decode: pixels and preprocessing; explain: the forward pass (classification) and LRP together. */
  timings: { decode: number; explain: number; render: number; png: number };
}

/** Classify + explain + render one file to a PNG. Exported for tests and scripts; `renderCommand` is the CLI. */
export async function renderFile(options: RenderFileOptions, config: GatewayConfig): Promise<RenderReport> {
  const selection = await selectBackend(config.inference.backend, { allowSoftwareGpu: config.inference.allowSoftwareGpu });
  const model = loadModel(options.modelDir ?? modelDirectory(config));
  try {
    return await explainAndRender(model, options, config, selection.name);
  } finally {
    model.network.dispose();
  }
}

async function explainAndRender(model: LoadedModel, options: RenderFileOptions, config: GatewayConfig, backend: string): Promise<RenderReport> {
  const { manifest } = model;
  const { target: configTarget, ...configLrp } = config.explain;
  const lrpOptions = { ...configLrp, composite: options.composite ?? configLrp.composite };
  const target = options.target ?? configTarget;
  if (target === 'all') {
    throw new GatewayError('USAGE', "render draws one heatmap; explain.target is 'all', so name the class with --target CLASS");
  }
  if (target !== 'predicted' && !manifest.classes.includes(target)) {
    throw new GatewayError('USAGE', `--target '${target}' is not a class of ${manifest.name}; its classes are ${manifest.classes.join(', ')}`);
  }
  const lrp = new DenseNetLrp(model.network, manifest.classes, manifest.preprocessing, lrpOptions);
  try {
    const t0 = performance.now();
    const image = await loadImage(readFileSync(options.file));
    const input = preprocess(image, manifest.preprocessing);
    const t1 = performance.now();
    // One pass, as in the daemon: the explanation's forward pass gives every class's logits.
    const explanation = await explainOne(lrp, input.data, input.shape, target);
    const classification = classificationFromLogits(manifest.classes, explanation.logits);
    const t2 = performance.now();
    const rendered = renderHeatmapOfImage(
      image,
      classification,
      {
        relevance: explanation.relevance,
        targetClass: explanation.targetClass,
        composite: lrpOptions.composite,
        parameters: describeLrpParameters(lrp.options),
      },
      { name: manifest.name, version: manifest.version, intendedUse: manifest.intendedUse, preprocessing: manifest.preprocessing },
      { layout: options.layout ?? 'overlay', ...(options.maxEdge === undefined ? {} : { maxEdge: options.maxEdge }) },
    );
    const t3 = performance.now();
    writeFileSync(options.png, encodePng(rendered.image));
    const t4 = performance.now();
    return {
      file: options.file,
      png: options.png,
      backend,
      predicted: classification.predicted,
      probabilities: byClass(classification),
      explainedClass: explanation.targetClass,
      composite: lrpOptions.composite,
      rows: rendered.image.rows,
      columns: rendered.image.columns,
      timings: { decode: ms(t1 - t0), explain: ms(t2 - t1), render: ms(t3 - t2), png: ms(t4 - t3) },
    };
  } finally {
    lrp.dispose();
  }
}

async function explainOne(
  lrp: DenseNetLrp,
  data: Float32Array,
  shape: [number, number, number],
  target: string,
): Promise<{ relevance: Float32Array; targetClass: string; logits: number[] }> {
  const [size, , channels] = shape;
  // LRP runs on the 3-channel stem torchvision defines; a one-channel model's grey input is replicated, as for
  // classification.
  const x = tf.tidy(() => {
    const t = tf.tensor4d(data, [1, size, size, channels]);
    return channels === 3 ? t : tf.tile(t, [1, 1, 1, 3]);
  });
  try {
    const [perImage] = await lrp.explain(x, target);
    const explanation = perImage?.[0];
    if (!explanation) throw new GatewayError('INTERNAL', 'LRP returned no explanation');
    return explanation;
  } finally {
    x.dispose();
  }
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
    `heatmap for ${r.explainedClass} (LRP ${r.composite}, ${r.backend}) -> ${r.png}  ${r.columns} x ${r.rows}\n` +
    `time: decode ${t.decode} ms, classify + explain ${t.explain} ms, render ${t.render} ms, png ${t.png} ms\n`
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
export async function renderCommand(args: readonly string[], io: CommandIo = { stdout: process.stdout, env: process.env }): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...args],
      allowPositionals: true,
      options: {
        png: { type: 'string' },
        model: { type: 'string', short: 'm' },
        layout: { type: 'string', default: 'overlay' },
        composite: { type: 'string' },
        target: { type: 'string' },
        'max-edge': { type: 'string' },
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
  if (file === undefined || extra.length > 0) throw new GatewayError('USAGE', `render takes exactly one DICOM file\n${RENDER_USAGE}`);
  if (values.png === undefined) throw new GatewayError('USAGE', `render needs --png OUT.png\n${RENDER_USAGE}`);
  const layout = values.layout;
  if (layout !== 'overlay' && layout !== 'side-by-side') throw new GatewayError('USAGE', `--layout must be overlay or side-by-side, got '${layout}'`);
  const composite = values.composite;
  if (composite !== undefined && !isComposite(composite)) {
    throw new GatewayError('USAGE', `--composite must be one of ${COMPOSITE_NAMES.join(', ')}, got '${composite}'`);
  }
  let maxEdge: number | undefined;
  if (values['max-edge'] !== undefined) {
    maxEdge = Number(values['max-edge']);
    if (!Number.isInteger(maxEdge)) throw new GatewayError('USAGE', `--max-edge must be a whole number of pixels, got '${values['max-edge']}'`);
  }
  const { config } = loadConfig(resolveConfigPath(values.config, io.env));
  const report = await renderFile(
    {
      file,
      png: values.png,
      layout,
      ...(values.model === undefined ? {} : { modelDir: values.model }),
      ...(composite === undefined ? {} : { composite }),
      ...(values.target === undefined ? {} : { target: values.target }),
      ...(maxEdge === undefined ? {} : { maxEdge }),
    },
    config,
  );
  io.stdout.write(values.json ? `${JSON.stringify(report, null, 2)}\n` : formatRenderReport(report));
  return 0;
}

function isComposite(name: string): name is CompositeName {
  return (COMPOSITE_NAMES as readonly string[]).includes(name);
}
