// What the console's routes share (its own file so that route modules and console-app.ts do not import each other).
import type { Logger } from '../../logging/logger.js';
import type { AuthBackend, ConsoleBackend } from '../console-types.js';
import type { LoginLimiter } from './login-limiter.js';

export interface ConsoleSettings {
  sessionMaxHours: number;
  loginAttemptsPerMinute: number;
}

export interface ConsoleDeps {
  console: ConsoleBackend;
  auth: AuthBackend;
  settings: ConsoleSettings;
  logger: Logger;
  /** The clock of the login limiter (tests move it instead of sleeping). */
  now: () => number;
}

/** What routes share: the backends and the limiters of failed logins. */
export interface ConsoleContext extends ConsoleDeps {
  byUser: LoginLimiter;
  byAddress: LoginLimiter;
}
