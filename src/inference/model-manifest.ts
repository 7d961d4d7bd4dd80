import { readFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { isValidUid } from '../dicom/uids.js';
import { GatewayError, describeError } from '../errors.js';
import { denseNetArchitectureSchema } from './densenet-architecture.js';
import { preprocessingSchema } from '../imaging/preprocessing-spec.js';

export const MANIFEST_FILE = 'manifest.json';

export const manifestSchema = z
  .object({
    name: z.string().min(1),
    version: z.string().min(1),
    /**
     * Identifies these exact weights wherever results are reported (DeviceUID in the Secondary Capture's
     * Contributing Equipment). A new training run or weights file gets a new UID.
     */
    modelUid: z.string().refine(isValidUid, 'must be a DICOM UID'),
    architecture: denseNetArchitectureSchema,
    /** Class names in the order of the network's outputs. */
    classes: z.array(z.string().min(1)).min(1),
    preprocessing: preprocessingSchema,
    weights: z
      .object({
        file: z.string().min(1),
        format: z.enum(['safetensors', 'tfjs']),
        sha256: z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 lowercase hex digits'),
      })
      .strict(),
    intendedUse: z.string().min(1),
    description: z.string().optional(),
  })
  .strict()
  .superRefine((m, ctx) => {
    if (m.classes.length !== m.architecture.numClasses) {
      ctx.addIssue({
        code: 'custom',
        path: ['classes'],
        message: `lists ${m.classes.length} classes but architecture.numClasses is ${m.architecture.numClasses}`,
      });
    }
    if (new Set(m.classes).size !== m.classes.length) {
      ctx.addIssue({ code: 'custom', path: ['classes'], message: 'class names must be unique' });
    }
    const c = m.preprocessing.channels;
    if (m.preprocessing.mean.length !== c || m.preprocessing.std.length !== c) {
      ctx.addIssue({
        code: 'custom',
        path: ['preprocessing'],
        message: `mean and std need ${c} value(s), one per channel`,
      });
    }
  });

export type ModelManifest = z.infer<typeof manifestSchema>;

export function readManifest(modelDir: string): ModelManifest {
  const file = path.join(modelDir, MANIFEST_FILE);
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    throw new GatewayError('MODEL_MANIFEST_INVALID', `cannot read the model manifest ${file}: ${describeError(error)}`);
  }
  // Before the schema: a template's placeholder is what the user must fix, whatever else its text breaks.
  const placeholders = placeholderFields(raw);
  if (placeholders.length > 0) {
    throw new GatewayError(
      'MODEL_PLACEHOLDER',
      `${file}: ${placeholders.map((p) => `${p.field} still holds the template's placeholder '${p.text}'`).join('; ')}; fill in every '${PLACEHOLDER_PREFIX}' field (see models/README.md)`,
    );
  }
  const parsed = manifestSchema.safeParse(raw);
  if (!parsed.success) {
    const issues = parsed.error.issues
      .map((i) => `${i.path.map(String).join('.') || '(top level)'}: ${i.message}`)
      .join('; ');
    throw new GatewayError('MODEL_MANIFEST_INVALID', `${file}: ${issues}`);
  }
  return parsed.data;
}

/** How the manifest templates under models/ mark a value the site must supply. */
export const PLACEHOLDER_PREFIX = 'FILL:';

/**
 * Every string in a parsed manifest (at any depth) that still starts with the template's placeholder prefix,
 * with its field path as the schema's messages write it (`weights.sha256`, `classes.1`).
 */
export function placeholderFields(value: unknown, at: readonly string[] = []): Array<{ field: string; text: string }> {
  if (typeof value === 'string')
    return value.trimStart().startsWith(PLACEHOLDER_PREFIX)
      ? [{ field: at.join('.') || '(top level)', text: value }]
      : [];
  if (Array.isArray(value)) return value.flatMap((v, i) => placeholderFields(v, [...at, String(i)]));
  if (value !== null && typeof value === 'object')
    return Object.entries(value).flatMap(([k, v]) => placeholderFields(v, [...at, k]));
  return [];
}
