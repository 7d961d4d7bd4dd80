// Disk full, on a small tmpfs (`mount -t tmpfs -o size=8m`; needs root) that holds the daemon's whole work folder
// (config, dataDir with spool and SQLite, output folders), with storage.minFreeDiskMB 0 so that the real ENOSPC
// paths run rather than the free-space pre-check.
//
// Phase 1, during stores: a raw SCU sends images until the disk is full (and on past it). Every C-STORE status is
// recorded. Invariants: a store that could not be made durable answers A7xx (Out of Resources), never another
// failure status; every Success is stored for good (row and whole file); no spool file without a row (orphan), also
// after a restart.
// Phase 2, during output writes: with the disk emptied again, studies are stored, then a filler file takes all the
// free space but --headroom-kb (room for SQLite's page writes, not for an SC) before the pipeline writes their outputs (quiet period 3 s). Once the daemon has met the full disk (a
// positive event in its log), the filler is removed. Invariant: every study's SC and ORU are delivered after the
// space returns, without a restart or an admin.
//
//   node dist/bench/reliability/disk-full.js [--size-mb 8] [--images 120] [--studies 6] [--settle 60] [--headroom-kb 384]
//        [--phase2-size-mb 24] [--phase2-rows 512] [--hold-seconds 3] [--tight-tries 8] [--seed N]
//
// DISK_FULL_LOG_DUMP=FILE: when phase 2 is not all delivered in time, the daemon's log lines (JSON, one per line) go
// to FILE: how the stuck job's lease was left behind (issue 20's heartbeat fix) was found that way.

import { execFileSync } from 'node:child_process';
import {
  closeSync,
  existsSync,
  mkdtempSync,
  openSync,
  readdirSync,
  rmSync,
  statSync,
  truncateSync,
  unlinkSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { GatewayUnderTest, LogLine } from '../../test/helpers/gateway-process.js';
import { writeGatewayConfig } from '../../test/helpers/gateway-process.js';
import { newUid } from '../../test/helpers/dicom-factory.js';
import { datasetBytesOfPart10, openAssociation, type RawAssociation } from '../../test/helpers/raw-scu.js';
import {
  auditOutputs,
  check,
  elapsedSeconds,
  filesUnder,
  folderPipelineConfig,
  formatStates,
  isAlive,
  isMain,
  legitimateStore,
  makeImages,
  parseNumberOptions,
  printSummary,
  queryStore,
  randomSeed,
  runMain,
  scratchDir,
  sleep,
  startDaemon,
  storePath,
  waitUntil,
  type Figure,
} from './harness.js';

export interface DiskFullOptions extends Record<string, number> {
  sizeMb: number;
  images: number;
  studies: number;
  settle: number;
  headroomKb: number;
  phase2SizeMb: number;
  phase2Rows: number;
  holdSeconds: number;
  tightTries: number;
  seed: number;
}

export interface DiskFullResult {
  figures: Figure[];
  ok: boolean;
  statuses: Record<string, number>;
  successThenLost: number;
  nonA7Failures: number;
  orphans: number;
  orphansAfterRestart: number;
  phase2Delivered: number;
  phase2Expected: number;
  seconds: number;
}

function mountTmpfs(sizeMb: number): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'rel-tmpfs-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeMb}m`, 'tmpfs', dir]);
  return dir;
}

function unmount(dir: string): void {
  try {
    execFileSync('umount', [dir]);
    rmSync(dir, { recursive: true, force: true });
  } catch (error) {
    console.error(`could not unmount ${dir}: ${error instanceof Error ? error.message : String(error)}`);
  }
}

/**
 * Writes zeros into `file` until the file system refuses (ENOSPC), then gives back `headroom` bytes; returns the
 * filler's size. The headroom lets SQLite's small page writes through while an SC (hundreds of KB) does not fit.
 */
function fillDisk(file: string, headroom: number): number {
  const fd = openSync(file, 'w');
  const chunk = Buffer.alloc(64 * 1024);
  let written = 0;
  try {
    for (;;) {
      try {
        written += writeSync(fd, chunk);
      } catch {
        // Down to single pages: leave nothing at all.
        try {
          written += writeSync(fd, Buffer.alloc(4096));
        } catch {
          break;
        }
      }
    }
  } finally {
    closeSync(fd);
  }
  const size = Math.max(0, written - headroom);
  truncateSync(file, size);
  return size;
}

/** Spool files with no row: under spool/studies not named by instances.path, and finished files left in incoming/. */
function orphanFiles(dataDir: string): string[] {
  const spool = path.join(dataDir, 'spool');
  const known = new Set(
    queryStore<{ path: string }>(storePath('', dataDir), 'SELECT path FROM instances').map((r) => path.resolve(r.path)),
  );
  const studies = filesUnder(path.join(spool, 'studies')).map((f) => path.resolve(spool, 'studies', f));
  const incoming = existsSync(path.join(spool, 'incoming'))
    ? readdirSync(path.join(spool, 'incoming')).map((f) => path.resolve(spool, 'incoming', f))
    : [];
  return [...studies.filter((f) => !known.has(f)), ...incoming];
}

function scSize(root: string): number | string {
  const first = filesUnder(path.join(root, 'out', 'dicom'))[0];
  return first === undefined ? '-' : statSync(path.join(root, 'out', 'dicom', first)).size;
}

const hex = (status: number): string => `0x${status.toString(16).padStart(4, '0')}`;

export async function runDiskFull(options: DiskFullOptions): Promise<DiskFullResult> {
  const started = Date.now();
  const mount = mountTmpfs(options.sizeMb);
  let mount2: string | undefined;
  let gateway: GatewayUnderTest | undefined;
  try {
    const setup = await writeGatewayConfig(
      folderPipelineConfig({ storage: { dataDir: 'data', minFreeDiskMB: 0 }, assembly: { quietPeriodSeconds: 3 } }),
      mount,
    );
    const dataDir = path.join(mount, 'data');
    gateway = await startDaemon(setup);
    // Room kept back for phase 1b, given back once phase 1 has filled the disk.
    const reserve = path.join(mount, 'reserve.bin');
    writeFileSync(reserve, Buffer.alloc(1536 * 1024));

    // ---- Phase 1: stores until (and past) the disk is full.
    const inputs = scratchDir('diskfull-in');
    const perStudy = Math.max(1, Math.ceil(options.images / options.studies));
    const images = [];
    for (let s = 0; s * perStudy < options.images; s += 1) {
      images.push(
        ...(await makeImages(path.join(inputs, `s${s}`), Math.min(perStudy, options.images - s * perStudy), {
          rows: 256,
          studyInstanceUid: newUid(),
          seedBase: options.seed + s * 100,
        })),
      );
    }
    const statuses: Record<string, number> = {};
    const acknowledged: typeof images = [];
    const nonA7: string[] = [];
    let noAnswer = 0;
    let assoc: RawAssociation | undefined;
    for (const image of images) {
      if (!assoc) {
        const opened = await openAssociation({
          host: '127.0.0.1',
          port: setup.port,
          callingAe: 'MODALITY',
          calledAe: 'CXR_GATEWAY',
          contexts: [{ abstractSyntax: image.sopClassUid, transferSyntaxes: [image.transferSyntaxUid] }],
          timeoutMs: 15_000,
        }).catch(() => undefined);
        if (!opened || opened.rejected) {
          statuses['association failed'] = (statuses['association failed'] ?? 0) + 1;
          continue;
        }
        assoc = opened;
      }
      try {
        const { dataset } = datasetBytesOfPart10(image.bytes);
        const rsp = await assoc.store({
          sopClassUid: image.sopClassUid,
          sopInstanceUid: image.sopInstanceUid,
          dataset,
        });
        statuses[hex(rsp.status)] = (statuses[hex(rsp.status)] ?? 0) + 1;
        if (rsp.status === 0) acknowledged.push(image);
        else if ((rsp.status & 0xff00) !== 0xa700) nonA7.push(`${hex(rsp.status)} ${rsp.errorComment ?? ''}`.trim());
      } catch {
        noAnswer += 1;
        assoc.destroy();
        assoc = undefined;
      }
    }
    if (assoc) await assoc.release().catch(() => assoc?.destroy());
    // ---- Phase 1b: so little room left that the instance file fits but the store's SQLite write may not (issue 14:
    // a file in spool/studies with no row). Space comes from a reserve file made at the start; each try leaves a
    // different headroom around one file's size, one C-STORE per association.
    unlinkSync(reserve);
    const fileBytes = images[0]?.bytes.length ?? 0;
    const tight = await makeImages(path.join(inputs, 'tight'), options.tightTries, {
      rows: 256,
      studyInstanceUid: newUid(),
      seedBase: options.seed + 5000,
    });
    const tightFiller = path.join(mount, 'tight-filler.bin');
    const tightStatuses: Record<string, number> = {};
    for (const [k, image] of tight.entries()) {
      if (existsSync(tightFiller)) unlinkSync(tightFiller);
      fillDisk(tightFiller, Math.max(0, fileBytes - 16384 + k * 8192));
      images.push(image);
      const one = await openAssociation({
        host: '127.0.0.1',
        port: setup.port,
        callingAe: 'MODALITY',
        calledAe: 'CXR_GATEWAY',
        contexts: [{ abstractSyntax: image.sopClassUid, transferSyntaxes: [image.transferSyntaxUid] }],
        timeoutMs: 15_000,
      }).catch(() => undefined);
      if (!one || one.rejected) {
        tightStatuses['association failed'] = (tightStatuses['association failed'] ?? 0) + 1;
        continue;
      }
      try {
        const rsp = await one.store({
          sopClassUid: image.sopClassUid,
          sopInstanceUid: image.sopInstanceUid,
          dataset: datasetBytesOfPart10(image.bytes).dataset,
        });
        tightStatuses[hex(rsp.status)] = (tightStatuses[hex(rsp.status)] ?? 0) + 1;
        statuses[hex(rsp.status)] = (statuses[hex(rsp.status)] ?? 0) + 1;
        if (rsp.status === 0) acknowledged.push(image);
        else if ((rsp.status & 0xff00) !== 0xa700) nonA7.push(`${hex(rsp.status)} ${rsp.errorComment ?? ''}`.trim());
        await one.release().catch(() => one.destroy());
      } catch {
        noAnswer += 1;
        one.destroy();
      }
    }
    // Every acknowledged instance: a row, and its file whole on disk.
    const storeFile = storePath('', dataDir);
    const rows = new Map(
      queryStore<{ sop_instance_uid: string; path: string; size_bytes: number }>(
        storeFile,
        'SELECT sop_instance_uid, path, size_bytes FROM instances',
      ).map((r) => [r.sop_instance_uid, r]),
    );
    const successThenLost = acknowledged.filter((i) => {
      const row = rows.get(i.sopInstanceUid);
      return !row || !existsSync(row.path) || statSync(row.path).size !== row.size_bytes;
    }).length;
    const orphanList = orphanFiles(dataDir);
    const orphans = orphanList.length;
    for (const o of orphanList.slice(0, 5)) console.log(`orphan: ${path.relative(dataDir, o)}`);
    const phase1Failures = images.length - acknowledged.length;
    // A restart must reconcile the spool with the store.
    await gateway.stop();
    gateway = await startDaemon(setup);
    const orphansAfterRestart = orphanFiles(dataDir).length;
    const phase1Seconds = elapsedSeconds(started);

    // ---- Phase 2: outputs written while the disk is full, then space comes back (a fresh tmpfs of its own).
    await gateway.stop();
    gateway = undefined;
    mount2 = mountTmpfs(options.phase2SizeMb);
    const setup2 = await writeGatewayConfig(
      folderPipelineConfig({ storage: { dataDir: 'data', minFreeDiskMB: 0 }, assembly: { quietPeriodSeconds: 3 } }),
      mount2,
    );
    const storeFile2 = storePath('', path.join(mount2, 'data'));
    gateway = await startDaemon(setup2);
    const phase2 = await makeImages(path.join(inputs, 'phase2'), options.studies, {
      rows: options.phase2Rows,
      seedBase: options.seed + 9999,
    });
    const stored = await legitimateStore(
      setup2.port,
      phase2.map((i) => i.path),
      30,
    );
    const filler = path.join(mount2, 'filler.bin');
    const filled = fillDisk(filler, options.headroomKb * 1024);
    const running = gateway;
    // Positive event: the daemon met the full disk while writing or delivering outputs (ENOSPC in a warn/error).
    const fillAt = running.logs.length;
    const metFullDisk = await waitUntil(
      () =>
        running.logs
          .slice(fillAt)
          .some(
            (l: LogLine) => (l.level === 'error' || l.level === 'warn') && /ENOSPC|no space/i.test(JSON.stringify(l)),
          ),
      30_000,
      200,
    );
    const fullDiskEvents = running.logs
      .slice(fillAt)
      .filter((l) => (l.level === 'error' || l.level === 'warn') && /ENOSPC|no space/i.test(JSON.stringify(l)))
      .map((l) => l.message);
    if (!metFullDisk) {
      const after = running.logs
        .slice(fillAt)
        .filter((l) => l.level !== 'debug')
        .slice(-8);
      console.log(
        `no ENOSPC logged after the fill; the daemon's last lines: ${after.map((l) => `${l.level} ${l.message} ${JSON.stringify(l).slice(0, 200)}`).join('\n  ')}`,
      );
    }
    // Keep the disk full a little longer so that more than one job meets it.
    if (metFullDisk) await sleep(options.holdSeconds * 1000);
    const enospcEvents = running.logs
      .slice(fillAt)
      .filter((l) => (l.level === 'error' || l.level === 'warn') && /ENOSPC|no space/i.test(JSON.stringify(l))).length;
    unlinkSync(filler);
    const spaceBack = Date.now();
    const delivered = await waitUntil(
      () => {
        const a = auditOutputs(mount2 as string, storeFile2);
        return a.scFiles.length >= phase2.length && a.oruFiles.length >= phase2.length;
      },
      options.settle * 1000,
      500,
    );
    const audit = auditOutputs(mount2, storeFile2);
    if (!delivered && process.env.DISK_FULL_LOG_DUMP) {
      writeFileSync(process.env.DISK_FULL_LOG_DUMP, running.logs.map((l) => JSON.stringify(l)).join('\n'));
    }
    const deliveredSeconds = delivered ? ((Date.now() - spaceBack) / 1000).toFixed(1) : '-';
    const alive = isAlive(running.pid);

    const figures: Figure[] = [
      [`tmpfs size (MB) phase 1 / phase 2`, `${options.sizeMb} / ${options.phase2SizeMb}`],
      ['phase 1: C-STOREs sent (256 x 256 x 16 bit)', images.length],
      [
        '  statuses',
        Object.entries(statuses)
          .map(([k, v]) => `${k}:${v}`)
          .join(' '),
      ],
      [
        '  of which phase 1b (file fits, little else)',
        `${options.tightTries} tries: ${Object.entries(tightStatuses)
          .map(([k, v]) => `${k}:${v}`)
          .join(' ')}`,
      ],
      ['  refused or unanswered', phase1Failures],
      ['  failures with a status other than A7xx', nonA7.length, check(nonA7.length === 0)],
      ['  connections dropped without an answer', noAnswer],
      ['  Success, then lost (no row, or file missing or short)', successThenLost, check(successThenLost === 0)],
      ['  orphan spool files (no row)', orphans, check(orphans === 0)],
      ['  orphan spool files after a restart', orphansAfterRestart, check(orphansAfterRestart === 0)],
      ['  seconds', phase1Seconds],
      [
        `phase 2: studies stored before the fill (${options.phase2Rows} px)`,
        `${phase2.length} (storescu ${stored.ok ? 'ok' : 'failed'})`,
        check(stored.ok),
      ],
      ['  SC size (bytes, first delivered)', scSize(mount2)],
      ['  filler bytes (all free space)', filled],
      [
        '  daemon met ENOSPC after the fill (warn/error logged)',
        metFullDisk ? `yes: ${[...new Set(fullDiskEvents)].slice(0, 3).join('; ')}` : 'no (the scenario missed)',
        check(metFullDisk),
      ],
      ['  ENOSPC warnings/errors while full', enospcEvents],
      [
        '  SC files after space returned',
        `${audit.scFiles.length}/${phase2.length}`,
        check(audit.scFiles.length >= phase2.length),
      ],
      [
        '  ORU files after space returned',
        `${audit.oruFiles.length}/${phase2.length}`,
        check(audit.oruFiles.length >= phase2.length),
      ],
      ['  seconds from space back to all delivered', deliveredSeconds],
      ['  jobs', formatStates(audit.jobStates)],
      ['  deliveries', formatStates(audit.deliveryStates)],
      ['daemon alive', alive ? 'yes' : 'no', check(alive)],
      ['seconds', elapsedSeconds(started)],
    ];
    for (const f of nonA7.slice(0, 5)) console.log(`non-A7xx failure: ${f}`);
    return {
      figures,
      ok: !figures.some(([, , v]) => v === 'FAIL'),
      statuses,
      successThenLost,
      nonA7Failures: nonA7.length,
      orphans,
      orphansAfterRestart,
      phase2Delivered: Math.min(audit.scFiles.length, audit.oruFiles.length),
      phase2Expected: phase2.length,
      seconds: (Date.now() - started) / 1000,
    };
  } finally {
    if (gateway && isAlive(gateway.pid)) await gateway.stop();
    unmount(mount);
    if (mount2) unmount(mount2);
  }
}

if (isMain(import.meta.url)) {
  runMain(async () => {
    const options = parseNumberOptions(process.argv.slice(2), {
      sizeMb: 8,
      images: 120,
      studies: 6,
      settle: 60,
      headroomKb: 384,
      phase2SizeMb: 24,
      phase2Rows: 512,
      holdSeconds: 3,
      tightTries: 8,
      seed: randomSeed(),
    });
    console.log(`disk-full: seed ${options.seed}`);
    const result = await runDiskFull(options);
    printSummary('disk full (tmpfs)', options.seed, options, result.figures);
    return result.ok;
  });
}
