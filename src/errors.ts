/**
 * An error a person can act on: a stable code for scripts and tests, and a sentence for the admin.
 * Every failure that leaves a module boundary is one of these, never a bare string.
 */
export class GatewayError extends Error {
  constructor(
    readonly code: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'GatewayError';
  }
}

export function describeError(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}
