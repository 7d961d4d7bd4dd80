/**
 * Errors a WebGPU device reported on its own. WebGPU reports a bad pipeline or command (a shader the WGSL
 * compiler rejects, a binding out of range) as an "uncaptured error" event, not an exception: the op still
 * returns, with garbage in it. Dawn prints these to stderr; this keeps them countable, so a test or a health
 * check can fail on them instead of trusting the numbers.
 */
interface ErrorEventTarget {
  addEventListener(type: 'uncapturederror', listener: (event: { error?: { message?: unknown } }) => void): void;
}

const seen: string[] = [];
/** Kept bounded: a broken pipeline reports again on every dispatch. */
const MAX_KEPT = 100;
let total = 0;

export function watchDeviceErrors(device: unknown): void {
  const target = device as Partial<ErrorEventTarget> | null;
  if (typeof target?.addEventListener !== 'function') return;
  target.addEventListener('uncapturederror', (event) => {
    total += 1;
    const message = typeof event.error?.message === 'string' ? event.error.message : 'unknown WebGPU error';
    if (seen.length < MAX_KEPT) seen.push(message.split('\n')[0] ?? message);
  });
}

/** How many uncaptured device errors there were since the process started, and the first messages. */
export function deviceErrors(): { count: number; first: readonly string[] } {
  return { count: total, first: [...seen] };
}
