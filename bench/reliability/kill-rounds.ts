// kill -9 rounds: the daemon (folder pipeline) is started, a raw SCU sends fresh studies, and after a random delay
// the daemon is killed with SIGKILL (while it stores, assembles, classifies or writes outputs of this round's or an
// earlier round's studies), then started again on the same work folder for the next round. The raw SCU tells exactly
// which C-STOREs were acknowledged (Success) before the kill. After the last round the daemon runs until everything
// is settled, and every acknowledged instance must have exactly one set of outputs: stored, one written result
// (job_images), its SC file in the PACS folder, one job per study, and its study's ORU in the RIS folder once.
// This is the approach of test/pipeline/peers-crash-recovery.test.ts, at random points and many times.
//
//   node dist/bench/reliability/kill-rounds.js [--rounds 100] [--studies 2] [--images 3] [--max-delay 3000] [--seed N]
//        [--settle 180] [--time-limit 900]

import path from 'node:path';
import { existsSync } from 'node:fs';
import { resultControlId } from '../../src/reporting/hl7-control-id.js';
import type { GatewayUnderTest } from '../../test/helpers/gateway-process.js';
import { datasetBytesOfPart10, openAssociation } from '../../test/helpers/raw-scu.js';
import {
  Rng,
  auditOutputs,
  check,
  elapsedSeconds,
  formatStates,
  isMain,
  makeImages,
  parseNumberOptions,
  prepareDaemon,
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
import { newUid } from '../../test/helpers/dicom-factory.js';

export interface KillRoundsOptions extends Record<string, number> {
  rounds: number;
  studies: number;
  images: number;
  maxDelay: number;
  seed: number;
  settle: number;
  timeLimit: number;
}

export interface KillRoundsResult {
  figures: Figure[];
  ok: boolean;
  rounds: number;
  acknowledged: number;
  lost: number;
  duplicated: number;
  unprocessed: number;
  seconds: number;
}

interface Sent {
  sopInstanceUid: string;
  studyInstanceUid: string;
  acknowledged: boolean;
}

/** Sends the files in one association; records each Success. Stops quietly when the daemon dies under it. */
async function sendRound(
  port: number,
  files: Array<{
    bytes: Buffer;
    sopInstanceUid: string;
    sopClassUid: string;
    studyInstanceUid: string;
    transferSyntaxUid: string;
  }>,
  sent: Sent[],
): Promise<void> {
  const records = files.map((f) => ({
    sopInstanceUid: f.sopInstanceUid,
    studyInstanceUid: f.studyInstanceUid,
    acknowledged: false,
  }));
  sent.push(...records);
  let assoc;
  try {
    const first = files[0];
    if (!first) return;
    assoc = await openAssociation({
      host: '127.0.0.1',
      port,
      callingAe: 'MODALITY',
      calledAe: 'CXR_GATEWAY',
      contexts: [{ abstractSyntax: first.sopClassUid, transferSyntaxes: [first.transferSyntaxUid] }],
      timeoutMs: 5000,
    });
    if (assoc.rejected) return;
    for (const [i, f] of files.entries()) {
      const { dataset } = datasetBytesOfPart10(f.bytes);
      const rsp = await assoc.store({ sopClassUid: f.sopClassUid, sopInstanceUid: f.sopInstanceUid, dataset });
      if (rsp.status === 0x0000) (records[i] as Sent).acknowledged = true;
    }
    await assoc.release();
  } catch {
    // The kill landed: whatever was not acknowledged is not our problem to find later.
  } finally {
    if (assoc && !assoc.rejected) assoc.destroy();
  }
}

export async function runKillRounds(options: KillRoundsOptions): Promise<KillRoundsResult> {
  const started = Date.now();
  const deadline = started + options.timeLimit * 1000;
  const rng = new Rng(options.seed);
  const setup = await prepareDaemon();
  const inputs = scratchDir('kill-in');
  const sent: Sent[] = [];
  let rounds = 0;
  let killedDuringStore = 0;
  let startFailures = 0;
  const delays: number[] = [];
  let gateway: GatewayUnderTest | undefined;
  try {
    for (let round = 0; round < options.rounds && Date.now() < deadline; round += 1) {
      try {
        gateway = await startDaemon(setup);
      } catch (error) {
        // A daemon that cannot start after a kill is a finding: count it and try again (the work folder is kept).
        startFailures += 1;
        console.error(
          `round ${round}: the daemon did not start: ${error instanceof Error ? error.message.slice(0, 300) : String(error)}`,
        );
        continue;
      }
      const files = [];
      for (let s = 0; s < options.studies; s += 1) {
        files.push(
          ...(await makeImages(path.join(inputs, `r${round}`), options.images, {
            studyInstanceUid: newUid(),
            seedBase: rng.int(1_000_000),
          })),
        );
      }
      const delay = rng.int(options.maxDelay + 1);
      delays.push(delay);
      const before = sent.length;
      const t0 = Date.now();
      let finished = false;
      const sending = sendRound(gateway.port, files, sent).then(() => {
        finished = true;
      });
      await Promise.race([sending, sleep(delay)]);
      if (finished)
        await sleep(Math.max(0, delay - (Date.now() - t0))); // the kill falls in assembly/processing/output
      else killedDuringStore += 1;
      await gateway.kill9();
      await sending;
      rounds += 1;
      if (round % 10 === 9) {
        const acked = sent.filter((s) => s.acknowledged).length;
        console.log(
          `round ${round + 1}: ${acked} acknowledged so far (${sent.length - before} sent this round), ${elapsedSeconds(started)} s`,
        );
      }
    }
    // Last start: let it finish everything.
    gateway = await startDaemon(setup);
    const storeFile = storePath(setup.workDir);
    const acked = sent.filter((s) => s.acknowledged);
    const ackedUids = new Set(acked.map((s) => s.sopInstanceUid));
    const settled = await waitUntil(
      () => {
        const audit = auditOutputs(setup.workDir, storeFile);
        const jobsBusy = Object.keys(audit.jobStates).some((s) => s !== 'done' && s !== 'failed');
        const deliveriesBusy = Object.keys(audit.deliveryStates).some((s) => s !== 'delivered' && s !== 'parked');
        const receiving =
          queryStore<{ n: number }>(storeFile, `SELECT COUNT(*) AS n FROM studies WHERE state = 'receiving'`)[0]?.n ??
          0;
        return (
          !jobsBusy && !deliveriesBusy && receiving === 0 && [...ackedUids].every((u) => audit.writtenPerSource.has(u))
        );
      },
      options.settle * 1000,
      1000,
    );

    const audit = auditOutputs(setup.workDir, storeFile);
    const stored = new Set(
      queryStore<{ sop_instance_uid: string }>(storeFile, 'SELECT sop_instance_uid FROM instances').map(
        (r) => r.sop_instance_uid,
      ),
    );
    const lost = acked.filter((s) => !stored.has(s.sopInstanceUid));
    const unprocessed = acked.filter(
      (s) => stored.has(s.sopInstanceUid) && !audit.writtenPerSource.has(s.sopInstanceUid),
    );
    const duplicated = acked.filter((s) => (audit.writtenPerSource.get(s.sopInstanceUid) ?? 0) > 1);
    const storedUnacked = sent.filter((s) => !s.acknowledged && stored.has(s.sopInstanceUid)).length;

    // Outputs: each written result's SC file exists; each study with acknowledged instances has one job and one ORU.
    const results = queryStore<{ sop_instance_uid: string; result: string; study: string }>(
      storeFile,
      `SELECT ji.sop_instance_uid, ji.result, j.study_instance_uid AS study FROM job_images ji JOIN jobs j ON j.id = ji.job_id WHERE ji.state = 'written'`,
    );
    let missingScFiles = 0;
    for (const r of results) {
      const parsed = JSON.parse(r.result) as { outputs: Array<{ kind: string; sopInstanceUid: string }> };
      for (const o of parsed.outputs.filter((x) => x.kind === 'sc')) {
        if (!existsSync(path.join(setup.workDir, 'out', 'dicom', r.study, `${o.sopInstanceUid}.dcm`)))
          missingScFiles += 1;
      }
    }
    const ackedStudies = [...new Set(acked.map((s) => s.studyInstanceUid))];
    const jobsPerStudy = new Map(
      queryStore<{ study: string; n: number }>(
        storeFile,
        'SELECT study_instance_uid AS study, COUNT(*) AS n FROM jobs GROUP BY study_instance_uid',
      ).map((r) => [r.study, r.n]),
    );
    const studiesWithExtraJobs = ackedStudies.filter((s) => (jobsPerStudy.get(s) ?? 0) > 1).length;
    const oruFiles = new Set(audit.oruFiles);
    const studiesWithoutOru = ackedStudies.filter(
      (s) => !oruFiles.has(`${resultControlId(s, 0, 'ris-folder')}.hl7`),
    ).length;
    const scFilesOfAcked = audit.scFiles.filter((f) => ackedStudies.includes(f.split('/')[0] ?? '')).length;

    const figures: Figure[] = [
      ['kill -9 rounds', rounds, check(rounds === options.rounds)],
      ['  kills that landed during a C-STORE association', killedDuringStore],
      [
        '  kill delay (ms) min/median/max',
        delays.length === 0
          ? '-'
          : `${Math.min(...delays)}/${[...delays].sort((a, b) => a - b)[Math.floor(delays.length / 2)]}/${Math.max(...delays)}`,
      ],
      ['restarts that failed', startFailures, check(startFailures === 0)],
      ['instances sent', sent.length],
      ['acknowledged (Success)', acked.length],
      ['stored without an acknowledgement (allowed)', storedUnacked],
      ['acknowledged but lost', lost.length, check(lost.length === 0)],
      ['acknowledged, stored, never processed', unprocessed.length, check(unprocessed.length === 0)],
      ['processed more than once', duplicated.length, check(duplicated.length === 0)],
      ['studies with more than one job', studiesWithExtraJobs, check(studiesWithExtraJobs === 0)],
      ['SC files missing for written results', missingScFiles, check(missingScFiles === 0)],
      ['SC files for acknowledged studies', scFilesOfAcked],
      ['studies with acknowledged instances but no ORU', studiesWithoutOru, check(studiesWithoutOru === 0)],
      ['settled within --settle', settled ? 'yes' : 'no', check(settled)],
      ['jobs', formatStates(audit.jobStates)],
      ['deliveries', formatStates(audit.deliveryStates)],
      ['seconds', elapsedSeconds(started)],
    ];
    for (const s of lost.slice(0, 5)) console.log(`lost: ${s.sopInstanceUid} (study ${s.studyInstanceUid})`);
    for (const s of unprocessed.slice(0, 5))
      console.log(`never processed: ${s.sopInstanceUid} (study ${s.studyInstanceUid})`);
    console.log(`work folder (kept for inspection): ${setup.workDir}`);
    return {
      figures,
      ok: !figures.some(([, , v]) => v === 'FAIL'),
      rounds,
      acknowledged: acked.length,
      lost: lost.length,
      duplicated: duplicated.length,
      unprocessed: unprocessed.length,
      seconds: (Date.now() - started) / 1000,
    };
  } finally {
    await gateway?.stop();
  }
}

if (isMain(import.meta.url)) {
  runMain(async () => {
    const options = parseNumberOptions(process.argv.slice(2), {
      rounds: 100,
      studies: 2,
      images: 3,
      maxDelay: 3000,
      seed: randomSeed(),
      settle: 180,
      timeLimit: 900,
    });
    console.log(`kill-rounds: seed ${options.seed}`);
    const result = await runKillRounds(options);
    printSummary('kill -9 rounds', options.seed, options, result.figures);
    return result.ok;
  });
}
