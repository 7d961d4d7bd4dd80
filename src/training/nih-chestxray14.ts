import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { GatewayError } from '../errors.js';
import { parseCsv } from './csv.js';
import type { LabelledDataset, LabelledImage } from './labelled-image.js';
import { decodePng } from './png-image.js';

/** The 14 findings of NIH ChestX-ray14 (Wang et al. 2017), in the order CheXNet and its successors use. */
export const NIH_LABELS = [
  'Atelectasis',
  'Cardiomegaly',
  'Effusion',
  'Infiltration',
  'Mass',
  'Nodule',
  'Pneumonia',
  'Pneumothorax',
  'Consolidation',
  'Edema',
  'Emphysema',
  'Fibrosis',
  'Pleural_Thickening',
  'Hernia',
] as const;

/**
 * The NIH release as downloaded: Data_Entry_2017.csv ("Image Index", "Finding Labels" joined by '|',
 * "No Finding" for none, "Patient ID", "View Position") next to the PNGs, which may sit in the folder
 * itself or in images/ or images_001/images/ ... (the archive's own layout): files are found by name.
 */
export const nihSourceSchema = z
  .object({
    format: z.literal('nih-chestxray14'),
    dir: z.string().min(1),
    csv: z.string().min(1).default('Data_Entry_2017.csv'),
    /** Only these views (the target task classifies frontal images; NIH has PA and AP). */
    views: z
      .array(z.enum(['PA', 'AP']))
      .min(1)
      .default(['PA', 'AP']),
    /** A file listing the image names to use, one a line (e.g. the release's train_val_list.txt). */
    listFile: z.string().min(1).optional(),
    maxImages: z.number().int().min(1).optional(),
  })
  .strict();

export type NihSource = z.infer<typeof nihSourceSchema>;

export function readNihDataset(source: NihSource): LabelledDataset {
  const csvPath = path.resolve(source.dir, source.csv);
  if (!existsSync(csvPath))
    throw new GatewayError(
      'TRAINING_DATA_MISSING',
      `no ${csvPath}; point the NIH source at the folder that holds Data_Entry_2017.csv`,
    );
  const table = parseCsv(readFileSync(csvPath, 'utf8'));
  for (const column of ['Image Index', 'Finding Labels', 'Patient ID', 'View Position']) {
    if (!table.header.includes(column))
      throw new GatewayError(
        'TRAINING_DATA_INVALID',
        `${csvPath} has no column '${column}': not the NIH Data_Entry_2017.csv?`,
      );
  }
  const allowed = source.listFile
    ? new Set(
        readFileSync(path.resolve(source.dir, source.listFile), 'utf8')
          .split(/\r?\n/)
          .map((l) => l.trim())
          .filter(Boolean),
      )
    : undefined;
  const files = findPngs(path.resolve(source.dir), 3);
  const index = new Map<string, number>(NIH_LABELS.map((l, i) => [l, i]));
  const images: LabelledImage[] = [];
  let missing = 0;
  for (const row of table.rows) {
    const name = row['Image Index'] ?? '';
    if (allowed && !allowed.has(name)) continue;
    if (!source.views.includes((row['View Position'] ?? '') as 'PA' | 'AP')) continue;
    const file = files.get(name);
    if (file === undefined) {
      missing += 1;
      continue;
    }
    const target = new Float32Array(NIH_LABELS.length);
    for (const label of (row['Finding Labels'] ?? '').split('|')) {
      const i = index.get(label.trim());
      if (i !== undefined) target[i] = 1;
      else if (label.trim() !== 'No Finding')
        throw new GatewayError('TRAINING_DATA_INVALID', `${csvPath}: unknown finding '${label}' for ${name}`);
    }
    images.push({
      source: file,
      group: row['Patient ID'] ?? name,
      target,
      decode: async () => decodePng(await readFile(file), file),
    });
    if (source.maxImages !== undefined && images.length >= source.maxImages) break;
  }
  if (images.length === 0) {
    throw new GatewayError(
      'TRAINING_DATA_MISSING',
      `none of the images listed in ${csvPath} was found under ${source.dir} (${missing} missing); extract the images_*.tar.gz archives there`,
    );
  }
  return {
    kind: 'multi-label',
    classes: [...NIH_LABELS],
    images,
    description: `NIH ChestX-ray14 ${csvPath} (${images.length} images, ${missing} listed but absent)`,
  };
}

/** PNG files by base name, down to `depth` folder levels. */
function findPngs(dir: string, depth: number, out = new Map<string, string>()): Map<string, string> {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory() && depth > 0) findPngs(full, depth - 1, out);
    else if (entry.isFile() && entry.name.toLowerCase().endsWith('.png')) out.set(entry.name, full);
  }
  return out;
}
