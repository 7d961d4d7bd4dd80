import test from 'ava';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { once } from 'node:events';
import os from 'node:os';
import path from 'node:path';
import type { IncomingInstance, IngestOutcome } from '../../src/store/instance-sink.js';
import { statusForOutcome } from '../../src/dimse/dimse-status.js';
import { InstanceIngest } from '../../src/store/instance-ingest.js';
import { JobStore } from '../../src/store/job-store.js';
import { Spool } from '../../src/store/spool.js';
import { sweepSpool } from '../../src/store/spool-sweep.js';
import { makeImageFile } from '../helpers/dicom-factory.js';
import { sqliteOf } from '../helpers/sqlite-of.js';
import { capturingLogger, datasetOf, smallTmpfs } from './disk-full-helpers.js';

function setUp(spoolRoot: string) {
  const spool = new Spool(spoolRoot);
  spool.open();
  const store = JobStore.open(path.join(mkdtempSync(path.join(os.tmpdir(), 'ingest-db-')), 'db', 'jobs.sqlite'));
  const { logger, lines } = capturingLogger();
  const ingest = new InstanceIngest({ spool, store, logger, minFreeBytes: 0 });
  return { spool, store, ingest, lines };
}

/** Streams one image through begin/complete the way the SCP does. */
async function store(
  ingest: InstanceIngest,
  opts: Parameters<typeof makeImageFile>[0] = {},
): Promise<{ outcome: IngestOutcome; sopInstanceUid: string }> {
  const image = makeImageFile(opts);
  const incoming: IncomingInstance = {
    sopClassUid: image.sopClassUid,
    sopInstanceUid: image.sopInstanceUid,
    transferSyntaxUid: image.transferSyntaxUid,
    callingAe: 'DX1',
    calledAe: 'CXR_GATEWAY',
    sourceIp: '127.0.0.1',
    associationId: 'a1',
  };
  const start = ingest.begin(incoming);
  if (start.kind === 'refused') return { outcome: start, sopInstanceUid: image.sopInstanceUid };
  const data = datasetOf(image.bytes);
  for (let at = 0; at < data.length; at += 65536) {
    if (!start.transfer.writable.write(data.subarray(at, at + 65536))) {
      // A write error destroys the writer: 'drain' never comes, 'close' does.
      await Promise.race([once(start.transfer.writable, 'drain'), once(start.transfer.writable, 'close')]);
      if (start.transfer.writable.destroyed) break;
    }
  }
  start.transfer.writable.end();
  return { outcome: await start.transfer.complete(), sopInstanceUid: image.sopInstanceUid };
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => path.join(e.parentPath, e.name));
}

test('SQLite full at commit: A700, the renamed file is removed, no row', async (t) => {
  const { spool, store: jobs, ingest, lines } = setUp(mkdtempSync(path.join(os.tmpdir(), 'ingest-')));
  t.teardown(() => jobs.close());
  t.like((await store(ingest)).outcome, { kind: 'stored' });
  // SQLite's own "database or disk is full": the file may not grow past the pages it has now.
  const pages = Number(sqliteOf(jobs).pragma('page_count'));
  sqliteOf(jobs).pragma(`max_page_count = ${pages}`);
  let refused: IngestOutcome | undefined;
  // A page may have room for a row or two: store until SQLite says it is full.
  for (let i = 0; i < 50 && refused === undefined; i += 1) {
    const { outcome } = await store(ingest, { rows: 64, columns: 64 });
    if (outcome.kind === 'refused') refused = outcome;
  }
  t.like(refused, { kind: 'refused', reason: 'out-of-resources' });
  t.regex((refused as { message: string }).message, /out of disk space or resources .*full/);
  t.is(statusForOutcome(refused as IngestOutcome), 0xa700);
  const rows = new Set(jobs.instanceLocations().map((r) => r.path));
  t.deepEqual(
    filesUnder(spool.studiesDir).filter((f) => !rows.has(f)),
    [],
    'no file without a row',
  );
  t.deepEqual(filesUnder(spool.incomingDir), []);
  t.true(lines.some((l) => l.event === 'STORE-2011' && l.reason === 'out-of-resources'));
});

test('the disk fills while an image is written (real 2 MB tmpfs): A700, no file left, no row', async (t) => {
  const fs = smallTmpfs(2);
  t.teardown(fs.release);
  const { spool, store: jobs, ingest } = setUp(fs.dir);
  t.teardown(() => jobs.close());
  // 1024 x 1536 x 16 bits = 3 MB of pixels: more than the whole file system.
  const { outcome, sopInstanceUid } = await store(ingest, { rows: 1536, columns: 1024 });
  t.like(outcome, { kind: 'refused', reason: 'out-of-resources' });
  t.regex((outcome as { message: string }).message, /ENOSPC/);
  t.is(statusForOutcome(outcome), 0xa700);
  t.deepEqual(filesUnder(spool.root), []);
  t.is(jobs.findInstance(sopInstanceUid), undefined);
  // Space is there again for a normal image: the next store succeeds.
  t.like((await store(ingest)).outcome, { kind: 'stored' });
});

test('start-up sweep: a file without a row is removed and counted, a row without a file is logged, the rest is kept', async (t) => {
  const { spool, store: jobs, ingest } = setUp(mkdtempSync(path.join(os.tmpdir(), 'sweep-')));
  t.teardown(() => jobs.close());
  const kept = await store(ingest);
  const lost = await store(ingest);
  if (kept.outcome.kind !== 'stored' || lost.outcome.kind !== 'stored') return t.fail('setup stores failed');
  // What a process killed between a failed commit and its clean-up leaves: a whole file, no row.
  const orphanDir = path.join(spool.studiesDir, '1.2.3.4');
  const orphan = spool.finalPath('1.2.3.4', '1.2.3.4.5');
  mkdirSync(orphanDir);
  writeFileSync(orphan, 'x');
  // And an acknowledged file someone deleted by hand.
  rmSync(lost.outcome.path);
  const { logger, lines } = capturingLogger();
  const result = sweepSpool(spool, jobs, logger);
  t.is(result.orphanFilesRemoved, 1);
  t.false(existsSync(orphan));
  t.false(existsSync(orphanDir), 'the emptied study folder goes too');
  t.true(existsSync(kept.outcome.path));
  t.deepEqual(
    result.missingFiles.map((m) => m.sopInstanceUid),
    [lost.sopInstanceUid],
  );
  await new Promise((resolve) => setImmediate(resolve));
  t.like(
    lines.find((l) => l.event === 'STORE-2004'),
    { level: 'warn', count: 1 },
  );
  const error = lines.find((l) => l.level === 'error');
  t.like(error, { count: 1 });
  t.true(JSON.stringify(error).includes(lost.sopInstanceUid));
});

test('start-up sweep on a shared spool: a file without a row is kept while another node may still commit it, removed once old', (t) => {
  const { spool, store: jobs } = setUp(mkdtempSync(path.join(os.tmpdir(), 'sweep-shared-')));
  t.teardown(() => jobs.close());
  // What another node leaves between renaming a received file into studies/ and committing its row.
  mkdirSync(path.join(spool.studiesDir, '1.2.3.6'));
  const fresh = spool.finalPath('1.2.3.6', '1.2.3.6.1');
  writeFileSync(fresh, 'x');
  const { logger } = capturingLogger();
  const hour = 60 * 60 * 1000;
  t.is(sweepSpool(spool, jobs, logger, { orphanMinAgeMs: hour }).orphanFilesRemoved, 0);
  t.true(existsSync(fresh), 'a file younger than the grace is kept');
  // An hour and a second later, nobody is committing it any more: it goes.
  t.is(sweepSpool(spool, jobs, logger, { orphanMinAgeMs: hour, now: Date.now() + hour + 1000 }).orphanFilesRemoved, 1);
  t.false(existsSync(fresh));
});

test("nodes on one spool each receive into their own incoming folder: a node's start removes only its own partial transfers", (t) => {
  const root = mkdtempSync(path.join(os.tmpdir(), 'spool-nodes-'));
  const a = new Spool(root, 'node-a');
  const b = new Spool(root, 'node-b');
  a.open();
  b.open();
  t.not(a.incomingDir, b.incomingDir);
  const receiving = b.newIncomingPath();
  writeFileSync(receiving, 'half a transfer');
  const left = a.newIncomingPath();
  writeFileSync(left, 'what a crash left');
  t.is(a.open(), 1, 'node a restarts: its own partial transfer goes');
  t.false(existsSync(left));
  t.true(existsSync(receiving), "node b's transfer in progress is untouched");
});
