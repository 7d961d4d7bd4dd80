// The store's specification runs on both engines (issue 20): forEachEngine registers a test twice, "[sqlite]" on
// a new file in a temporary folder and "[postgres]" on a new database of one cluster per test file, started on
// the first PostgreSQL test that needs it and stopped after the file.
import type { ExecutionContext, TestFn } from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { StoreLocation } from '../../src/store/open-store.js';
import { startPostgres, type PostgresUnderTest } from '../helpers/postgres.js';

export type Engine = StoreLocation['engine'];
export const ENGINES: readonly Engine[] = ['sqlite', 'postgres'];

export type EngineTest = (t: ExecutionContext, location: StoreLocation, engine: Engine) => void | Promise<void>;

export function engineTests(test: TestFn): (title: string, fn: EngineTest) => void {
  let cluster: Promise<PostgresUnderTest> | undefined;
  test.after.always(async () => {
    if (cluster !== undefined) await (await cluster).stop();
  });
  const locationFor = async (engine: Engine, t: ExecutionContext): Promise<StoreLocation> => {
    if (engine === 'postgres') {
      cluster ??= startPostgres();
      const url = await (await cluster).createDatabase();
      return { engine, url, statementTimeoutMs: 30_000, connectTimeoutMs: 10_000 };
    }
    const dir = mkdtempSync(path.join(os.tmpdir(), 'cxr-store-spec-'));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    return { engine, file: path.join(dir, 'jobs.sqlite') };
  };
  return (title, fn) => {
    for (const engine of ENGINES) {
      test(`[${engine}] ${title}`, async (t) => fn(t, await locationFor(engine, t), engine));
    }
  };
}
