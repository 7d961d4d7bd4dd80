import dcmjs from 'dcmjs';
import { z } from 'zod';

const { DicomMetaDictionary } = dcmjs.data;
const TAG_PATTERN = /^\(?([0-9A-Fa-f]{4}),?([0-9A-Fa-f]{4})\)?$/;

/** An attribute is named by keyword (ViewPosition) or tag (0018,5101 / 00185101). */
export function attributeTag(key: string): string | undefined {
  const asTag = TAG_PATTERN.exec(key);
  if (asTag) return `${asTag[1]}${asTag[2]}`.toUpperCase();
  const entry = (DicomMetaDictionary as unknown as { nameMap: Record<string, { tag: string } | undefined> }).nameMap[
    key
  ];
  return entry ? entry.tag.replace(/[(),]/g, '').toUpperCase() : undefined;
}

/**
 * One condition on a value: a bare string means `equals`. Exactly one operator per condition, so a rule
 * reads the same way it is evaluated.
 */
export const conditionSchema = z.union([
  z.string(),
  z
    .object({
      equals: z.string().optional(),
      oneOf: z.array(z.string()).min(1).optional(),
      regex: z
        .string()
        .refine((r) => {
          try {
            new RegExp(r);
            return true;
          } catch {
            return false;
          }
        }, 'is not a valid regular expression')
        .optional(),
      exists: z.boolean().optional(),
    })
    .strict()
    .refine((c) => Object.keys(c).length === 1, 'give exactly one of equals, oneOf, regex, exists'),
]);

export type Condition = z.infer<typeof conditionSchema>;

export const matchSchema = z
  .object({
    callingAe: conditionSchema.optional(),
    calledAe: conditionSchema.optional(),
    sourceIp: conditionSchema.optional(),
    /** DICOM attributes by keyword or tag, e.g. Modality, BodyPartExamined, ViewPosition, 0008,1010. */
    attributes: z
      .record(z.string(), conditionSchema)
      .superRefine((attributes, ctx) => {
        for (const key of Object.keys(attributes)) {
          if (attributeTag(key) === undefined)
            ctx.addIssue({ code: 'custom', path: [key], message: 'is not a DICOM keyword or tag' });
        }
      })
      .default({}),
  })
  .strict();

export const eligibilityOverrideSchema = z
  .object({
    modalities: z.array(z.string().min(1)).min(1).optional(),
    bodyParts: z.array(z.string().min(1)).min(1).optional(),
    viewPositions: z.array(z.string().min(1)).min(1).optional(),
  })
  .strict();

export const actionSchema = z.union([
  z.object({ ignore: z.literal(true) }).strict(),
  z
    .object({
      ignore: z.literal(false).optional(),
      /** A name from `models`. */
      model: z.string().min(1),
      outputs: z
        .array(z.enum(['sc', 'sr']))
        .min(1)
        .default(['sc']),
      /** Names from destinations.pacs and destinations.ris. */
      pacs: z.array(z.string().min(1)).default([]),
      ris: z.array(z.string().min(1)).default([]),
      priority: z.enum(['urgent', 'normal']).default('normal'),
      /** Replaces parts of inference.eligibility for studies this rule routes (e.g. to classify laterals). */
      eligibility: eligibilityOverrideSchema.optional(),
    })
    .strict(),
]);

export const ruleSchema = z
  .object({
    name: z.string().min(1),
    match: matchSchema.default({ attributes: {} }),
    action: actionSchema,
  })
  .strict();

export type RoutingRule = z.infer<typeof ruleSchema>;
export type RuleAction = RoutingRule['action'];
export type ProcessAction = Exclude<RuleAction, { ignore: true }>;

/** A processing action (not `ignore`): what the pipeline stores in jobs.action and reads back through this. */
export const processActionSchema = actionSchema.options[1];
