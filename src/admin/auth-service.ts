import { createHash, randomBytes } from 'node:crypto';
import type { SqlDatabase } from '../store/sql-database.js';
import { UserStore } from '../store/user-store.js';
import type { AuthBackend, Role, SessionInfo } from './console-types.js';
import { dummyHash, verifyPassword } from './passwords.js';

export interface AuthOptions {
  /** A session unused this long ends (sliding: each request moves it). */
  sessionIdleMinutes: number;
  /** A session ends this long after login, however busy (absolute). */
  sessionMaxHours: number;
  now?: () => number;
}

/** Session tokens are kept as SHA-256: a copy of the job store opens no session. */
export function tokenHash(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

/**
 * Local users and sessions for the console (AuthBackend), over the job store's users and sessions tables. A
 * token is 32 random bytes (base64url) handed to the browser once; only its hash is stored.
 */
export class AuthService implements AuthBackend {
  private readonly users: UserStore;
  private readonly now: () => number;
  private readonly idleMs: number;
  private readonly maxMs: number;

  constructor(db: SqlDatabase, options: AuthOptions) {
    this.users = new UserStore(db);
    this.now = options.now ?? Date.now;
    this.idleMs = options.sessionIdleMinutes * 60_000;
    this.maxMs = options.sessionMaxHours * 3_600_000;
    // Computed now, so that the first login with an unknown name does not take twice as long as a wrong password.
    dummyHash().catch(() => undefined);
  }

  async verify(user: string, password: string): Promise<{ user: string; role: Role } | undefined> {
    const record = this.users.findUser(user);
    if (record === undefined || record.disabled) {
      await verifyPassword(password, await dummyHash());
      return undefined;
    }
    return (await verifyPassword(password, record.passwordHash)) ? { user: record.name, role: record.role } : undefined;
  }

  createSession(user: string, role: Role, address: string): string {
    const now = this.now();
    this.users.purgeExpiredSessions(now);
    const token = randomBytes(32).toString('base64url');
    this.users.insertSession({
      tokenHash: tokenHash(token),
      user,
      role,
      address,
      createdAt: now,
      lastSeenAt: now,
      expiresAt: this.expiry(now, now),
    });
    return token;
  }

  session(token: string): SessionInfo | undefined {
    const now = this.now();
    const hash = tokenHash(token);
    const found = this.users.findSession(hash);
    if (found === undefined) return undefined;
    if (found.expiresAt <= now) {
      this.users.deleteSession(hash);
      return undefined;
    }
    const expiresAt = this.expiry(found.createdAt, now);
    this.users.touchSession(hash, now, expiresAt);
    return { user: found.user, role: found.role, createdAt: found.createdAt, expiresAt };
  }

  endSession(token: string): void {
    this.users.deleteSession(tokenHash(token));
  }

  hasUsers(): boolean {
    return this.users.countUsers() > 0;
  }

  /** Idle expiry from `seen`, never past the absolute limit from `created`. */
  private expiry(created: number, seen: number): number {
    return Math.min(seen + this.idleMs, created + this.maxMs);
  }
}
