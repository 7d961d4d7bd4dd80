import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import { GatewayError } from '../errors.js';

/**
 * Console passwords, hashed with scrypt from node:crypto (no native add-on to build): N=2^15, r=8, p=1 takes about
 * 100-200 ms here, which makes guessing slow and a login still quick. Stored as `scrypt$N$r$p$salt$hash` (base64),
 * so the cost can be raised later and old hashes still verify.
 */
export const SCRYPT_PARAMS = { N: 2 ** 15, r: 8, p: 1 } as const;
const KEY_BYTES = 32;
const SALT_BYTES = 16;
/** A stored hash asking for more work than this is refused, not computed (a tampered row must not stall the daemon). */
const MAX_N = 2 ** 20;
export const PASSWORD_MIN = 12;
const PASSWORD_MAX = 1024;

export interface ScryptParams {
  N: number;
  r: number;
  p: number;
}

function derive(password: string, salt: Buffer, params: ScryptParams): Promise<Buffer> {
  // maxmem above what the parameters need (128 * N * r bytes), which node's 32 MiB default would refuse at N=2^15.
  const options: ScryptOptions = { ...params, maxmem: 256 * params.N * params.r + 1024 * 1024 };
  return new Promise((resolve, reject) =>
    scrypt(password.normalize('NFC'), salt, KEY_BYTES, options, (error, key) => (error ? reject(error) : resolve(key))),
  );
}

/** Refuses a password the console would not accept (PASSWORD_WEAK). */
export function checkPasswordRule(password: string): void {
  if (password.length < PASSWORD_MIN || password.length > PASSWORD_MAX)
    throw new GatewayError(
      'PASSWORD_WEAK',
      `a console password needs ${PASSWORD_MIN} to ${PASSWORD_MAX} characters (this one has ${password.length})`,
    );
}

export async function hashPassword(password: string, params: ScryptParams = SCRYPT_PARAMS): Promise<string> {
  const salt = randomBytes(SALT_BYTES);
  const key = await derive(password, salt, params);
  return `scrypt$${params.N}$${params.r}$${params.p}$${salt.toString('base64')}$${key.toString('base64')}`;
}

function parse(stored: string): { params: ScryptParams; salt: Buffer; key: Buffer } | undefined {
  const parts = stored.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return undefined;
  const [N, r, p] = parts.slice(1, 4).map((x) => Number(x));
  if (N === undefined || r === undefined || p === undefined) return undefined;
  if (![N, r, p].every((x) => Number.isSafeInteger(x) && x > 0)) return undefined;
  if (N > MAX_N || (N & (N - 1)) !== 0 || r > 32 || p > 16) return undefined;
  const salt = Buffer.from(parts[4] ?? '', 'base64');
  const key = Buffer.from(parts[5] ?? '', 'base64');
  if (salt.length < 8 || key.length !== KEY_BYTES) return undefined;
  return { params: { N, r, p }, salt, key };
}

/** Whether `password` matches the stored hash; false for a malformed hash (never throws for bad input). */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const parsed = parse(stored);
  if (parsed === undefined || password.length > PASSWORD_MAX) {
    // Same work as a real check, so a malformed row or an absurd password is not told apart by timing.
    await derive(password.slice(0, PASSWORD_MAX), randomBytes(SALT_BYTES), SCRYPT_PARAMS);
    return false;
  }
  const key = await derive(password, parsed.salt, parsed.params);
  return timingSafeEqual(key, parsed.key);
}

let dummy: Promise<string> | undefined;

/**
 * A hash no password is known for, verified against when the user is unknown (or disabled), so that an unknown
 * name and a wrong password take the same time and a login form cannot be used to find user names.
 */
export function dummyHash(): Promise<string> {
  dummy ??= hashPassword(randomBytes(24).toString('base64'));
  return dummy;
}
