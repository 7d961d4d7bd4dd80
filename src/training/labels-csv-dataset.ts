import { existsSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { GatewayError } from '../errors.js';
import { loadImage } from '../imaging/read-image.js';
import { parseCsv } from './csv.js';
import type { LabelledDataset, LabelledImage } from './labelled-image.js';
import type { TaskKind } from './losses.js';
import { decodePng } from './png-image.js';

/**
 * A folder of images (DICOM, or PNG by extension) with a CSV that names each file and its label(s): the
 * layout the phantom generator writes and the simplest one a site can produce from its own archive.
 */
export const labelsCsvSourceSchema = z
  .object({
    format: z.literal('labels-csv'),
    dir: z.string().min(1),
    labelsFile: z.string().min(1).default('labels.csv'),
    /** Path of the image, relative to `dir`. */
    fileColumn: z.string().min(1).default('file'),
    /** The label cell: one class (single-label task) or several joined by `separator` (multi-label). */
    labelColumn: z.string().min(1).default('class'),
    separator: z.string().min(1).default('|'),
    /** Images sharing this value (a patient) stay on one side of the validation split. */
    groupColumn: z.string().min(1).optional(),
    /**
     * CSV label value -> task class name(s); [] means no class (a normal image in a findings task). Values
     * equal to a class name, ignoring case, need no entry.
     */
    labelMap: z.record(z.string(), z.union([z.string(), z.array(z.string())])).default({}),
    /** Rows whose label is one of these are left out. */
    skipLabels: z.array(z.string()).default([]),
    /** Use only the first N rows (after skipping). */
    maxImages: z.number().int().min(1).optional(),
  })
  .strict();

export type LabelsCsvSource = z.infer<typeof labelsCsvSourceSchema>;

export function readLabelsCsvDataset(
  source: LabelsCsvSource,
  kind: TaskKind,
  classes: readonly string[],
): LabelledDataset {
  const csvPath = path.join(source.dir, source.labelsFile);
  if (!existsSync(csvPath)) {
    throw new GatewayError(
      'TRAINING_DATA_MISSING',
      `no labels file ${csvPath}; a training folder needs a CSV with at least the columns ${source.fileColumn},${source.labelColumn}`,
    );
  }
  const table = parseCsv(readFileSync(csvPath, 'utf8'));
  for (const column of [source.fileColumn, source.labelColumn, ...(source.groupColumn ? [source.groupColumn] : [])]) {
    if (!table.header.includes(column)) {
      throw new GatewayError(
        'TRAINING_DATA_INVALID',
        `${csvPath} has no column '${column}' (columns: ${table.header.join(', ')})`,
      );
    }
  }
  const resolve = labelResolver(source, classes, csvPath);
  const images: LabelledImage[] = [];
  table.rows.forEach((row, r) => {
    const cell = row[source.labelColumn] ?? '';
    const values =
      kind === 'multi-label'
        ? cell
            .split(source.separator)
            .map((v) => v.trim())
            .filter((v) => v !== '')
        : [cell.trim()];
    if (values.some((v) => source.skipLabels.includes(v))) return;
    const indices = new Set(values.flatMap(resolve));
    if (kind === 'single-label' && indices.size !== 1) {
      throw new GatewayError(
        'TRAINING_DATA_INVALID',
        `${csvPath} row ${r + 2}: '${cell}' must name exactly one of ${classes.join(', ')} (or map it with labelMap)`,
      );
    }
    const target = new Float32Array(classes.length);
    for (const i of indices) target[i] = 1;
    const file = path.resolve(source.dir, row[source.fileColumn] ?? '');
    images.push({
      source: file,
      group: (source.groupColumn ? row[source.groupColumn] : undefined) || file,
      target,
      decode: async () => {
        const bytes = await readFile(file);
        return file.toLowerCase().endsWith('.png') ? decodePng(bytes, file) : loadImage(bytes);
      },
    });
  });
  const limited = source.maxImages === undefined ? images : images.slice(0, source.maxImages);
  if (limited.length === 0) throw new GatewayError('TRAINING_DATA_INVALID', `${csvPath} lists no usable images`);
  return { kind, classes: [...classes], images: limited, description: `${csvPath} (${limited.length} images)` };
}

/** CSV label value -> task class indices, through labelMap or a case-insensitive name match. */
function labelResolver(
  source: LabelsCsvSource,
  classes: readonly string[],
  csvPath: string,
): (value: string) => number[] {
  const byName = new Map(classes.map((c, i) => [c.toLowerCase(), i]));
  const index = (name: string, value: string) => {
    const i = byName.get(name.toLowerCase());
    if (i === undefined) {
      throw new GatewayError(
        'TRAINING_DATA_INVALID',
        `labelMap maps '${value}' to '${name}', which is not one of the task's classes (${classes.join(', ')})`,
      );
    }
    return i;
  };
  return (value) => {
    const mapped = source.labelMap[value];
    if (mapped !== undefined) return (Array.isArray(mapped) ? mapped : [mapped]).map((m) => index(m, value));
    const i = byName.get(value.toLowerCase());
    if (i === undefined) {
      throw new GatewayError(
        'TRAINING_DATA_INVALID',
        `${csvPath}: label '${value}' is not one of ${classes.join(', ')}; map it with labelMap (e.g. "${value}": []) or leave it out with skipLabels`,
      );
    }
    return [i];
  };
}
