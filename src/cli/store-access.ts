import os from 'node:os';
import { loadConfig, resolveConfigPath } from '../config/load-config.js';
import type { GatewayConfig } from '../config/schema.js';
import { GatewayError, describeError } from '../errors.js';
import { storeLocationOf } from '../gateway.js';
import type { JobStore } from '../store/job-store.js';
import { openStore as openJobStore, redactUrl } from '../store/open-store.js';
import type { StoreActor } from '../store/console-queries.js';

/**
 * The console commands work on the job store itself: whoever can read the config and reach the store is the admin
 * the console would trust (that is the CLI's authentication). On SQLite, WAL and busy_timeout (set by JobStore)
 * make this safe while the daemon runs; on PostgreSQL the CLI is one more client. Each change is one transaction,
 * which the daemon sees through its store watch.
 */
export interface StoreSession {
  config: GatewayConfig;
  store: JobStore;
}

/** Opens the config's job store; read-only for listings, read-write (migrating) for actions. */
export function openStore(configFlag: string | undefined, mode: 'read' | 'write'): StoreSession {
  const { config } = loadConfig(resolveConfigPath(configFlag, process.env));
  const location = storeLocationOf(config);
  try {
    return { config, store: openJobStore(location, mode).store };
  } catch (error) {
    // Errors of the store's own (a wrong collation, an unreachable server) already say what to do.
    if (error instanceof GatewayError) throw error;
    const where = location.engine === 'sqlite' ? location.file : redactUrl(location.url);
    throw new GatewayError(
      'STORE_UNAVAILABLE',
      `cannot open the job store ${where} (has the daemon run with this config?): ${describeError(error)}`,
    );
  }
}

/** The CLI acts as `cli:<OS user>` from 'local', with the admin role. */
export function cliActor(): StoreActor {
  let name: string;
  try {
    name = os.userInfo().username;
  } catch {
    name = process.env.USER ?? String(process.getuid?.() ?? 'unknown');
  }
  return { user: `cli:${name}`, role: 'admin', address: 'local' };
}

/** Runs `fn` with the store open, closing it afterwards whatever happens. */
export function withStore<T>(configFlag: string | undefined, mode: 'read' | 'write', fn: (s: StoreSession) => T): T {
  const session = openStore(configFlag, mode);
  try {
    return fn(session);
  } finally {
    session.store.close();
  }
}
