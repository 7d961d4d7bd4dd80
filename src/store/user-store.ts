import { GatewayError } from '../errors.js';
import type { SqlDatabase, SqlStatement, SqlValue } from './sql-database.js';

export type UserRole = 'viewer' | 'admin';
export const USER_ROLES: readonly UserRole[] = ['viewer', 'admin'];

export interface UserSummary {
  name: string;
  role: UserRole;
  createdAt: number;
  updatedAt: number;
  disabled: boolean;
}

export interface UserRecord extends UserSummary {
  passwordHash: string;
}

export interface SessionRecord {
  tokenHash: string;
  user: string;
  role: UserRole;
  address: string;
  createdAt: number;
  lastSeenAt: number;
  expiresAt: number;
}

interface UserRow {
  name: string;
  password_hash: string;
  role: UserRole;
  created_at: number;
  updated_at: number;
  disabled: number;
}

interface SessionRow {
  token_hash: string;
  user: string;
  role: UserRole;
  address: string;
  created_at: number;
  last_seen_at: number;
  expires_at: number;
}

// Letters, digits and . _ - @ (e.g. a hospital account name or an e-mail address); nothing that needs quoting.
const NAME = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/;

export function checkUserName(name: string): void {
  if (!NAME.test(name))
    throw new GatewayError(
      'USER_NAME_INVALID',
      `'${name.slice(0, 80)}' is not a console user name: use 1 to 64 letters, digits, dots, dashes, underscores or @`,
    );
}

export function checkRole(role: string): asserts role is UserRole {
  if (!(USER_ROLES as readonly string[]).includes(role))
    throw new GatewayError('ROLE_INVALID', `'${role}' is not a console role: use 'viewer' (reads) or 'admin' (acts)`);
}

function toUser(r: UserRow): UserRecord {
  return {
    name: r.name,
    role: r.role,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    disabled: r.disabled !== 0,
    passwordHash: r.password_hash,
  };
}

/**
 * Console users and their sessions, in the job store (a restart keeps them; the CLI adds users to the same file
 * while the daemon runs). Passwords arrive hashed (admin/passwords.ts) and session tokens as SHA-256 hex: neither
 * a password nor a usable token is ever written here.
 */
export class UserStore {
  constructor(private readonly db: SqlDatabase) {}

  addUser(name: string, passwordHash: string, role: UserRole, now: number): void {
    checkUserName(name);
    checkRole(role);
    const inserted = this.db
      .prepare(
        `INSERT INTO users (name, password_hash, role, created_at, updated_at, disabled) VALUES (?, ?, ?, ?, ?, 0)
         ON CONFLICT (name) DO NOTHING`,
      )
      .run(name, passwordHash, role, now, now);
    if (inserted.changes === 0) throw new GatewayError('USER_EXISTS', `a console user '${name}' exists already`);
  }

  /** A new password ends the user's sessions (a leaked one is worthless after the change). */
  setPassword(name: string, passwordHash: string, now: number): void {
    this.db.transaction(() => {
      this.mustUpdate(name, this.db.prepare('UPDATE users SET password_hash = ?, updated_at = ? WHERE name = ?'), [
        passwordHash,
        now,
        name,
      ]);
      this.db.prepare('DELETE FROM sessions WHERE "user" = ?').run(name);
    })();
  }

  setRole(name: string, role: UserRole, now: number): void {
    checkRole(role);
    this.db.transaction(() => {
      this.mustUpdate(name, this.db.prepare('UPDATE users SET role = ?, updated_at = ? WHERE name = ?'), [
        role,
        now,
        name,
      ]);
      this.db.prepare('DELETE FROM sessions WHERE "user" = ?').run(name);
    })();
  }

  setDisabled(name: string, disabled: boolean, now: number): void {
    this.db.transaction(() => {
      this.mustUpdate(name, this.db.prepare('UPDATE users SET disabled = ?, updated_at = ? WHERE name = ?'), [
        disabled ? 1 : 0,
        now,
        name,
      ]);
      if (disabled) this.db.prepare('DELETE FROM sessions WHERE "user" = ?').run(name);
    })();
  }

  removeUser(name: string): void {
    this.db.transaction(() => {
      this.db.prepare('DELETE FROM sessions WHERE "user" = ?').run(name);
      const removed = this.db.prepare('DELETE FROM users WHERE name = ?').run(name);
      if (removed.changes === 0) throw new GatewayError('USER_NOT_FOUND', `no console user '${name}'`);
    })();
  }

  findUser(name: string): UserRecord | undefined {
    const row = this.db.prepare('SELECT * FROM users WHERE name = ?').get(name) as UserRow | undefined;
    return row && toUser(row);
  }

  listUsers(): UserSummary[] {
    return (this.db.prepare('SELECT * FROM users ORDER BY name').all() as UserRow[]).map((r) => {
      const { passwordHash: _hash, ...user } = toUser(r);
      return user;
    });
  }

  countUsers(): number {
    return (this.db.prepare('SELECT COUNT(*) AS n FROM users WHERE disabled = 0').get() as { n: number }).n;
  }

  insertSession(s: SessionRecord): void {
    this.db
      .prepare(
        `INSERT INTO sessions (token_hash, "user", role, address, created_at, last_seen_at, expires_at)
         VALUES (?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(s.tokenHash, s.user, s.role, s.address, s.createdAt, s.lastSeenAt, s.expiresAt);
  }

  /** The session with the user's current role; undefined when unknown or its user is disabled or gone. */
  findSession(tokenHash: string): SessionRecord | undefined {
    const row = this.db
      .prepare(
        `SELECT s.token_hash, s."user", u.role, s.address, s.created_at, s.last_seen_at, s.expires_at
         FROM sessions s JOIN users u ON u.name = s."user" WHERE s.token_hash = ? AND u.disabled = 0`,
      )
      .get(tokenHash) as SessionRow | undefined;
    return (
      row && {
        tokenHash: row.token_hash,
        user: row.user,
        role: row.role,
        address: row.address,
        createdAt: row.created_at,
        lastSeenAt: row.last_seen_at,
        expiresAt: row.expires_at,
      }
    );
  }

  touchSession(tokenHash: string, lastSeenAt: number, expiresAt: number): void {
    this.db
      .prepare('UPDATE sessions SET last_seen_at = ?, expires_at = ? WHERE token_hash = ?')
      .run(lastSeenAt, expiresAt, tokenHash);
  }

  deleteSession(tokenHash: string): void {
    this.db.prepare('DELETE FROM sessions WHERE token_hash = ?').run(tokenHash);
  }

  /** Removes sessions expired at `now`; returns how many. */
  purgeExpiredSessions(now: number): number {
    return this.db.prepare('DELETE FROM sessions WHERE expires_at <= ?').run(now).changes;
  }

  private mustUpdate(name: string, statement: SqlStatement, args: SqlValue[]): void {
    if (statement.run(...args).changes === 0) throw new GatewayError('USER_NOT_FOUND', `no console user '${name}'`);
  }
}
