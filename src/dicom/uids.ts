// A UID that reaches a file path or a SQL row must be a UID and nothing else: digits and dots,
// no empty component, at most 64 characters (PS3.5 9.1). This is what keeps `../` out of the spool.
const UID_PATTERN = /^[0-9]+(\.[0-9]+)*$/;

export function isValidUid(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0 && value.length <= 64 && UID_PATTERN.test(value);
}
