// The shared spool check (store/spool-marker.ts): the marker is written into an empty spool, matched afterwards,
// and a spool of another cluster, or an unmarked one with files on PostgreSQL, is refused naming both sides.
import test from 'ava';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { GatewayError } from '../../src/errors.js';
import { checkSpoolMarker, readSpoolMarker, SPOOL_MARKER } from '../../src/store/spool-marker.js';

function spoolDir(t: { teardown(fn: () => void): void }): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'cxr-spool-marker-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return path.join(dir, 'spool');
}

for (const engine of ['sqlite', 'postgres'] as const) {
  test(`[${engine}] a missing or empty spool gets the marker; the next start matches it`, async (t) => {
    const root = spoolDir(t);
    t.is(await checkSpoolMarker(root, 'cluster-a', engine), 'written');
    t.is(readFileSync(path.join(root, SPOOL_MARKER), 'utf8'), 'cluster-a\n');
    t.deepEqual(readdirSync(root), [SPOOL_MARKER], 'no temporary file is left');
    t.is(await checkSpoolMarker(root, 'cluster-a', engine), 'matched');
    t.is(await readSpoolMarker(root), 'cluster-a');
  });

  test(`[${engine}] folders without files count as empty`, async (t) => {
    const root = spoolDir(t);
    mkdirSync(path.join(root, 'studies', '1.2.3'), { recursive: true });
    mkdirSync(path.join(root, 'incoming'), { recursive: true });
    t.is(await checkSpoolMarker(root, 'cluster-a', engine), 'written');
  });

  test(`[${engine}] a marker of another cluster is refused, naming both ids, and is left as it was`, async (t) => {
    const root = spoolDir(t);
    await checkSpoolMarker(root, 'cluster-a', engine);
    const error = await t.throwsAsync(checkSpoolMarker(root, 'cluster-b', engine), { instanceOf: GatewayError });
    t.is((error as GatewayError).code, 'SPOOL_CLUSTER_MISMATCH');
    t.regex(error!.message, /cluster-a/);
    t.regex(error!.message, /cluster-b/);
    t.is(await readSpoolMarker(root), 'cluster-a');
  });
}

test('[sqlite] an unmarked spool with files (an install from before the marker) is adopted', async (t) => {
  const root = spoolDir(t);
  mkdirSync(path.join(root, 'studies', '1.2.3'), { recursive: true });
  writeFileSync(path.join(root, 'studies', '1.2.3', '1.2.3.4.dcm'), 'x');
  t.is(await checkSpoolMarker(root, 'file-id', 'sqlite'), 'adopted');
  t.is(await readSpoolMarker(root), 'file-id');
});

test('[postgres] an unmarked spool with files is refused and not marked', async (t) => {
  const root = spoolDir(t);
  mkdirSync(path.join(root, 'outputs'), { recursive: true });
  writeFileSync(path.join(root, 'outputs', 'sc.dcm'), 'x');
  const error = await t.throwsAsync(checkSpoolMarker(root, 'cluster-a', 'postgres'), { instanceOf: GatewayError });
  t.is((error as GatewayError).code, 'SPOOL_CLUSTER_MISMATCH');
  t.regex(error!.message, /cluster-a/);
  t.is(await readSpoolMarker(root), undefined);
});
