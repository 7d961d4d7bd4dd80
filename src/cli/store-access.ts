import os from 'node:os';
import { loadConfig, resolveConfigPath } from '../config/load-config.js';
import type { GatewayConfig } from '../config/schema.js';
import { GatewayError, describeError } from '../errors.js';
import { storeFileOf } from '../gateway.js';
import { JobStore } from '../store/job-store.js';
import type { StoreActor } from '../store/console-queries.js';

/**
 * The console commands work on the job store file itself: whoever can open the data folder is the admin the
 * console would trust (that is the CLI's authentication). WAL and busy_timeout (set by JobStore) make this safe
 * while the daemon runs; each change is one transaction, which the daemon sees on its next read.
 */
export interface StoreSession {
  config: GatewayConfig;
  store: JobStore;
}

/** Opens the store of the config's data folder; read-only for listings, read-write (migrating) for actions. */
export function openStore(configFlag: string | undefined, mode: 'read' | 'write'): StoreSession {
  const { config } = loadConfig(resolveConfigPath(configFlag, process.env));
  const file = storeFileOf(config);
  try {
    return { config, store: mode === 'read' ? JobStore.openReadOnly(file) : JobStore.open(file) };
  } catch (error) {
    throw new GatewayError(
      'STORE_UNAVAILABLE',
      `cannot open the job store ${file} (has the daemon run with this config?): ${describeError(error)}`,
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
