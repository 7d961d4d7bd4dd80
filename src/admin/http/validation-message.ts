import type { FastifyError } from 'fastify';
import { PATTERN_MEANINGS } from './api-schemas.js';

/**
 * A request the schemas refused, as a sentence an admin can act on: the field and what it must be in words (the
 * allowed values, or what a pattern means), never the schema's regular expression. Other failures keep Ajv's
 * own wording, which is already plain ("must have required property 'reason'", "must be <= 1000").
 */
export function validationSentence(error: FastifyError): string {
  const first = error.validation?.[0];
  if (first === undefined) return `Bad request: ${error.message}.`;
  const field = [error.validationContext ?? 'request', ...first.instancePath.split('/').filter(Boolean)].join('/');
  const params = first.params as Record<string, unknown>;
  if (first.keyword === 'enum' && Array.isArray(params.allowedValues)) {
    return `Bad request: ${field} must be one of: ${params.allowedValues.map(String).join(', ')}.`;
  }
  if (first.keyword === 'pattern' && typeof params.pattern === 'string') {
    const meaning = PATTERN_MEANINGS[params.pattern];
    if (meaning !== undefined) return `Bad request: ${field} must be ${meaning}.`;
  }
  return `Bad request: ${error.message}.`;
}
