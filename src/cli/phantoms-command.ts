import { parseArgs } from 'node:util';
import { describeError, GatewayError } from '../errors.js';
import { writePhantomDataset, type PhantomDatasetSummary } from '../phantoms/dataset-writer.js';
import { isPhantomSyntax, PHANTOM_SYNTAXES, type PhantomSyntax } from '../phantoms/frame-encoder.js';
import { PHANTOM_CLASSES, type PhantomClass } from '../phantoms/phantom-spec.js';

export const PHANTOMS_USAGE = `cxr-gateway phantoms: synthetic chest X-rays with known ground truth (DICOM DX + masks + labels.csv)

Usage:
  cxr-gateway phantoms --out DIR --n N [--seed S] [options]

  --out DIR                  new or empty folder to write (images/, masks/, labels.csv)
  --n N                      number of images (1..100000)
  --seed S                   dataset seed, 0..4294967295 (default 1); the same seed gives the same bytes
  --classes LIST             comma-separated subset of normal,pneumonia,covid (default all three, balanced)
  --size N                   rows in pixels, 32..4096 (default 1024)
  --aspect square|portrait   portrait: columns 80..100% of rows, like real detectors (default square)
  --lateral-fraction F       fraction of lateral chest views, ViewPosition LL (default 0)
  --non-chest-fraction F     fraction of HAND / SKULL images, for routing tests (default 0)
  --ap-fraction F            fraction of frontal chests taken AP (portable) instead of PA (default 0.3)
  --monochrome1-fraction F   fraction of MONOCHROME1 images (default 0.25)
  --images-per-study K       images per study (same patient and class), 1..16 (default 1)
  --text-markers             burn in side markers, PORTABLE, site names (away from the lungs)
  --syntax NAME              ${Object.keys(PHANTOM_SYNTAXES).join(' | ')} | mixed (default explicit)
  --previews                 also write previews/*.png (the images as a viewer shows them)
  --json                     print the summary as JSON

Exit status: 0 written; 1 could not write (the message says why); 2 bad arguments.`;

const OPTIONS = {
  out: { type: 'string' },
  n: { type: 'string' },
  seed: { type: 'string' },
  classes: { type: 'string' },
  size: { type: 'string' },
  aspect: { type: 'string' },
  'lateral-fraction': { type: 'string' },
  'non-chest-fraction': { type: 'string' },
  'ap-fraction': { type: 'string' },
  'monochrome1-fraction': { type: 'string' },
  'images-per-study': { type: 'string' },
  'text-markers': { type: 'boolean' },
  syntax: { type: 'string' },
  previews: { type: 'boolean' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

export interface PhantomsIo {
  stdout: { write(chunk: string): boolean };
  stderr: { isTTY?: boolean; write(chunk: string): boolean };
}

class UsageError extends Error {}

function integer(name: string, value: string | undefined, fallback?: number): number {
  if (value === undefined) {
    if (fallback === undefined) throw new UsageError(`--${name} is required`);
    return fallback;
  }
  if (!/^\d+$/.test(value.trim())) throw new UsageError(`--${name} must be a non-negative integer, got '${value}'`);
  return Number(value);
}

function fraction(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const v = Number(value);
  if (value.trim() === '' || !Number.isFinite(v) || v < 0 || v > 1)
    throw new UsageError(`--${name} must be a number from 0 to 1, got '${value}'`);
  return v;
}

function classes(value: string | undefined): PhantomClass[] | undefined {
  if (value === undefined) return undefined;
  const names = value
    .split(',')
    .map((c) => c.trim().toLowerCase())
    .filter((c) => c !== '');
  const known: readonly string[] = PHANTOM_CLASSES;
  for (const name of names)
    if (!known.includes(name))
      throw new UsageError(`--classes: unknown class '${name}' (use ${PHANTOM_CLASSES.join(', ')})`);
  if (names.length === 0) throw new UsageError('--classes needs at least one class');
  return names as PhantomClass[];
}

function syntax(value: string | undefined): PhantomSyntax | 'mixed' | undefined {
  if (value === undefined || value === 'mixed' || isPhantomSyntax(value)) return value;
  throw new UsageError(
    `--syntax: unknown syntax '${value}' (use ${Object.keys(PHANTOM_SYNTAXES).join(', ')} or mixed)`,
  );
}

function formatSummary(s: PhantomDatasetSummary): string {
  const list = (counts: Record<string, number>): string =>
    Object.entries(counts)
      .filter(([, n]) => n > 0)
      .map(([k, n]) => `${k} ${n}`)
      .join(', ');
  return [
    `wrote ${s.count} phantom image(s) in ${s.studies} stud${s.studies === 1 ? 'y' : 'ies'} to ${s.dir} in ${s.seconds.toFixed(1)} s`,
    `  classes:    ${list(s.byClass)}`,
    `  views:      ${list(s.byView)}`,
    `  body parts: ${list(s.byBodyPart)}`,
    `  labels:     ${s.labelsFile}`,
    '',
  ].join('\n');
}

/** `cxr-gateway phantoms ARGS` (the arguments after `phantoms`): writes a phantom dataset, returns the exit code. */
export async function phantomsCommand(
  argv: readonly string[],
  io: PhantomsIo = { stdout: process.stdout, stderr: process.stderr },
): Promise<number> {
  let summary: PhantomDatasetSummary;
  let json = false;
  try {
    const { values: flags, positionals } = parseArgs({ args: [...argv], options: OPTIONS, allowPositionals: true });
    if (flags.help) {
      io.stdout.write(`${PHANTOMS_USAGE}\n`);
      return 0;
    }
    if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0] ?? ''}'`);
    if (flags.out === undefined || flags.out.trim() === '') throw new UsageError('--out DIR is required');
    if (flags.aspect !== undefined && flags.aspect !== 'square' && flags.aspect !== 'portrait') {
      throw new UsageError(`--aspect must be square or portrait, got '${flags.aspect}'`);
    }
    json = flags.json === true;
    const chosenSyntax = syntax(flags.syntax);
    const classList = classes(flags.classes);
    const lateralFraction = fraction('lateral-fraction', flags['lateral-fraction']);
    const nonChestFraction = fraction('non-chest-fraction', flags['non-chest-fraction']);
    const apFraction = fraction('ap-fraction', flags['ap-fraction']);
    const monochrome1Fraction = fraction('monochrome1-fraction', flags['monochrome1-fraction']);
    const progress = io.stderr.isTTY === true && !json;
    summary = await writePhantomDataset({
      dir: flags.out,
      count: integer('n', flags.n),
      seed: integer('seed', flags.seed, 1),
      size: integer('size', flags.size, 1024),
      imagesPerStudy: integer('images-per-study', flags['images-per-study'], 1),
      textMarkers: flags['text-markers'] === true,
      previews: flags.previews === true,
      ...(flags.aspect === undefined ? {} : { aspect: flags.aspect }),
      ...(chosenSyntax === undefined ? {} : { syntax: chosenSyntax }),
      ...(classList === undefined ? {} : { classes: classList }),
      ...(lateralFraction === undefined ? {} : { lateralFraction }),
      ...(nonChestFraction === undefined ? {} : { nonChestFraction }),
      ...(apFraction === undefined ? {} : { apFraction }),
      ...(monochrome1Fraction === undefined ? {} : { monochrome1Fraction }),
      ...(progress
        ? {
            onImage: (done: number, total: number) =>
              io.stderr.write(`\rphantoms: ${done}/${total}${done === total ? '\n' : ''}`),
          }
        : {}),
    });
  } catch (error) {
    const usage =
      error instanceof UsageError ||
      (error instanceof TypeError && 'code' in error) ||
      (error instanceof GatewayError && error.code === 'PHANTOMS_OPTIONS');
    io.stderr.write(`cxr-gateway phantoms: ${describeError(error)}\n${usage ? `\n${PHANTOMS_USAGE}\n` : ''}`);
    return usage ? 2 : 1;
  }
  io.stdout.write(json ? `${JSON.stringify(summary, null, 2)}\n` : formatSummary(summary));
  return 0;
}
