// PDU fuzzer: mutated association and P-DATA streams (see pdu-streams.ts for the kinds) against the real daemon,
// `concurrency` at a time, in batches. After every batch: is the daemon alive (a crash is counted, its suspects
// printed, and the daemon restarted on the same work folder), how many server-side connections are still open 2 s
// after all the batch's streams closed, and does a legitimate DCMTK storescu still succeed. At the end: were any of
// the instances sent after an A-ASSOCIATE-RJ stored.
//
//   node dist/bench/reliability/pdu-fuzz.js [--streams 10000] [--batch 500] [--concurrency 16] [--seed N]
//        [--max-crashes 25] [--time-limit 900] [--replay I] [--kind K]
//   --replay I: play only stream I of --seed; --kind K: play only kind K (index in STREAM_KINDS of pdu-streams.ts).
// A crash is counted, the streams in flight are replayed one by one on the restarted daemon to name the culprit
// (each confirmed culprit is a further crash), and the run goes on until --max-crashes.

import path from 'node:path';
import type { GatewayUnderTest } from '../../test/helpers/gateway-process.js';
import {
  Rng,
  check,
  elapsedSeconds,
  isAlive,
  isMain,
  legitimateStore,
  makeImages,
  parseNumberOptions,
  prepareDaemon,
  printSummary,
  queryStore,
  randomSeed,
  runMain,
  scratchDir,
  serverConnections,
  sleep,
  startDaemon,
  storePath,
  type Figure,
} from './harness.js';
import {
  ALLOWED_CALLING_AE,
  STREAM_KINDS,
  pickKind,
  playStream,
  streamSeed,
  type StreamKind,
  type StreamOutcome,
} from './pdu-streams.js';

export interface PduFuzzOptions extends Record<string, number> {
  streams: number;
  batch: number;
  concurrency: number;
  seed: number;
  maxCrashes: number;
  timeLimit: number;
  /** -1: a normal run; otherwise the index of one stream to replay. */
  replay: number;
  /** -1: kinds drawn by weight; otherwise the index in STREAM_KINDS of the only kind played. */
  kind: number;
}

export interface PduFuzzResult {
  figures: Figure[];
  ok: boolean;
  streamsSent: number;
  crashes: number;
  crashCulprits: string[];
  crashReasons: Record<string, number>;
  /** Max over batches of server-side connections still open 2 s after the batch. */
  maxOpenAfterBatch: number;
  legitimateOk: number;
  legitimateRuns: number;
  storedAfterRejection: number;
  rejectedThenAnswered: number;
  leftOpenAfterEnd: Record<string, number>;
  secondAccepts: number;
  unknownCommandsMisanswered: number;
  unknownCommandStatuses: Record<string, number>;
  stoppedEarly: string | undefined;
  seconds: number;
}

export async function runPduFuzz(options: PduFuzzOptions): Promise<PduFuzzResult> {
  const started = Date.now();
  const deadline = started + options.timeLimit * 1000;
  const setup = await prepareDaemon({
    // Only FUZZER and the legitimate MODALITY may associate: INTRUDER's requests are rejected (the RJ-then-data case).
    dicom: { callers: { allowAny: false, allowed: [{ aeTitle: ALLOWED_CALLING_AE }, { aeTitle: 'MODALITY' }] } },
  });
  const legitDir = scratchDir('fuzz-legit');
  let gateway: GatewayUnderTest = await startDaemon(setup);
  let crashed = false;
  const watch = (g: GatewayUnderTest): void => {
    void g.exited.then(() => {
      if (g === gateway) crashed = true;
    });
  };
  watch(gateway);

  const perKind = Object.fromEntries(STREAM_KINDS.map((k) => [k, 0])) as Record<StreamKind, number>;
  const leftOpenAfterEnd: Record<string, number> = {};
  const unknownCommandStatuses: Record<string, number> = {};
  const crashCulprits: string[] = [];
  const crashReasons: Record<string, number> = {};
  const forcedKind = options.kind >= 0 ? STREAM_KINDS[options.kind] : undefined;
  const rejectedUids: string[] = [];
  let rejectedThenAnswered = 0;
  let secondAccepts = 0;
  let unknownCommandsMisanswered = 0;
  let crashes = 0;
  let sent = 0;
  let connectFailures = 0;
  let maxOpenAfterBatch = 0;
  let legitimateOk = 0;
  let legitimateRuns = 0;
  const legitimateFailures: string[] = [];
  let stoppedEarly: string | undefined;

  const record = (o: StreamOutcome): void => {
    perKind[o.kind] += 1;
    if (o.leftOpenAfterEnd)
      leftOpenAfterEnd[`${o.kind}: ${o.variant}`] = (leftOpenAfterEnd[`${o.kind}: ${o.variant}`] ?? 0) + 1;
    if (o.secondAccept) secondAccepts += 1;
    if (o.afterRejection?.rejected) {
      rejectedUids.push(o.afterRejection.sopInstanceUid);
      if (o.afterRejection.responded) rejectedThenAnswered += 1;
    }
    if (o.unknownCommandStatus !== undefined) {
      const answer = o.unknownCommandStatus;
      const key = `${o.variant} -> ${typeof answer === 'number' ? `0x${answer.toString(16).padStart(4, '0')}` : answer === 'abort' ? 'A-ABORT' : 'no answer'}`;
      // PS3.7: a service we do not offer is answered 0x0211 (Unrecognized Operation); an A-ABORT also ends it cleanly.
      // 0x0FFF is C-CANCEL-RQ, which has no response at all (PS3.7 9.3.2.3): silence is the right answer there.
      const cancel = o.variant === 'command 0xfff';
      if (cancel ? answer !== 'none' && answer !== 'abort' : answer !== 0x0211 && answer !== 'abort')
        unknownCommandsMisanswered += 1;
      unknownCommandStatuses[key] = (unknownCommandStatuses[key] ?? 0) + 1;
    }
  };

  const indices = options.replay >= 0 ? [options.replay] : Array.from({ length: options.streams }, (_, i) => i);
  const concurrency = options.replay >= 0 ? 1 : options.concurrency;
  try {
    for (let b = 0; b < indices.length && !stoppedEarly; b += options.batch) {
      const batch = indices.slice(b, b + options.batch);
      const inFlight = new Map<number, string>();
      const retry: number[] = [];
      let next = 0;
      const worker = async (): Promise<void> => {
        while (next < batch.length && !crashed) {
          const index = batch[next++] as number;
          const rng = new Rng(streamSeed(options.seed, index));
          const kind = forcedKind ?? pickKind(rng);
          inFlight.set(index, kind);
          try {
            record(await playStream(gateway.port, kind, rng));
            sent += 1;
            // The culprit often finishes (its connection closed by the dying daemon) before the exit event arrives.
            recent.push(`${index} ${kind}`);
            if (recent.length > concurrency) recent.shift();
          } catch {
            // No TCP connection: the daemon is down (the stream runs again after the restart) or its backlog is full.
            await sleep(300);
            if (isAlive(gateway.pid) && !crashed) connectFailures += 1;
            else retry.push(index);
          }
          if (crashed) for (const [i, k] of inFlight) suspects.add(`${i} ${k}`);
          inFlight.delete(index);
        }
      };
      const suspects = new Set<string>();
      const recent: string[] = [];
      await Promise.all(Array.from({ length: concurrency }, worker));
      if (crashed || !isAlive(gateway.pid)) {
        crashes += 1;
        const exit = await gateway.exited;
        const why = await crashReason(gateway);
        crashReasons[why] = (crashReasons[why] ?? 0) + 1;
        console.error(
          `daemon died in batch ${b / options.batch} (exit ${exit.code ?? exit.signal}: ${why}); streams in flight: ${[...suspects].join(', ')}`,
        );
        gateway = await startDaemon(setup);
        crashed = false;
        watch(gateway);
        // Which stream was it? Replay, alone on the fresh daemon, the streams that had just finished (newest first),
        // then those in flight, until one kills it.
        const candidates = [...new Set([...[...recent].reverse(), ...suspects])];
        for (const s of candidates) {
          if (crashes >= options.maxCrashes) break;
          const [i, k] = s.split(' ') as [string, StreamKind];
          let variant = '';
          try {
            variant = (await playStream(gateway.port, k, new Rng(streamSeed(options.seed, Number(i))))).variant;
          } catch {
            // the connection failing is what we look for below
          }
          await sleep(200);
          if (!isAlive(gateway.pid) || crashed) {
            crashes += 1;
            crashCulprits.push(`#${i} ${k} (${variant})`);
            await gateway.exited;
            const culpritWhy = await crashReason(gateway);
            crashReasons[culpritWhy] = (crashReasons[culpritWhy] ?? 0) + 1;
            console.error(`  culprit: stream #${i} (${k}: ${variant}) kills the daemon on its own`);
            await gateway.exited;
            gateway = await startDaemon(setup);
            crashed = false;
            watch(gateway);
            break;
          }
        }
        if (crashes >= options.maxCrashes) {
          stoppedEarly = `stopped after ${crashes} crashes`;
          break;
        }
        // The streams that never ran (or could not connect to the dead daemon) run with the next batch.
        indices.splice(b + options.batch, 0, ...retry, ...batch.slice(next));
      }
      // Connections the daemon still holds 2 s after every stream of the batch closed its side.
      await sleep(2000);
      const open = serverConnections(gateway.port);
      maxOpenAfterBatch = Math.max(maxOpenAfterBatch, open);
      const [image] = await makeImages(path.join(legitDir, `b${b}`), 1, { seedBase: b });
      legitimateRuns += 1;
      const legit = await legitimateStore(gateway.port, [image?.path ?? ''], 30);
      if (legit.ok) legitimateOk += 1;
      else legitimateFailures.push(`batch ${b / options.batch}: ${legit.detail}`);
      if (Date.now() > deadline) stoppedEarly = `time limit after ${sent} streams`;
    }
    const storeFile = storePath(setup.workDir);
    const storedRejected = new Set(
      rejectedUids.length === 0
        ? []
        : queryStore<{ sop_instance_uid: string }>(
            storeFile,
            `SELECT sop_instance_uid FROM instances WHERE sop_instance_uid IN (${rejectedUids.map(() => '?').join(',')})`,
            ...rejectedUids,
          ).map((r) => r.sop_instance_uid),
    );
    const leftOpenTotal = Object.values(leftOpenAfterEnd).reduce((s, n) => s + n, 0);
    const figures: Figure[] = [
      ['streams sent', sent, check(stoppedEarly === undefined || options.replay >= 0)],
      ['  by kind', STREAM_KINDS.map((k) => `${k}:${perKind[k]}`).join(' ')],
      ['connections refused / failed', connectFailures],
      ['daemon crashes', crashes, check(crashes === 0)],
      ['  streams confirmed to crash it alone', crashCulprits.length],
      ['server connections open 2 s after a batch (max)', maxOpenAfterBatch, check(maxOpenAfterBatch === 0)],
      ['abort/release/RJ not closed by the daemon within 2 s', leftOpenTotal, check(leftOpenTotal === 0)],
      [
        'legitimate storescu after each batch',
        `${legitimateOk}/${legitimateRuns}`,
        check(legitimateOk === legitimateRuns),
      ],
      ['C-STOREs sent after A-ASSOCIATE-RJ', rejectedUids.length],
      ['  answered with a C-STORE-RSP', rejectedThenAnswered, check(rejectedThenAnswered === 0)],
      ['  stored (should not have been)', storedRejected.size, check(storedRejected.size === 0)],
      ['second A-ASSOCIATE-AC on one connection', secondAccepts, check(secondAccepts === 0)],
      [
        'unknown/unsupported DIMSE commands not answered 0x0211 or A-ABORT',
        `${unknownCommandsMisanswered}/${perKind['unknown-dimse']}`,
        check(unknownCommandsMisanswered === 0),
      ],
      ['seconds', elapsedSeconds(started)],
    ];
    for (const f of legitimateFailures.slice(0, 5)) console.error(`legitimate sender failed: ${f}`);
    if (leftOpenTotal > 0) console.log(`left open within 2 s, by case: ${JSON.stringify(leftOpenAfterEnd)}`);
    if (Object.keys(unknownCommandStatuses).length > 0)
      console.log(`unknown/unsupported DIMSE commands: ${JSON.stringify(unknownCommandStatuses)}`);
    if (crashes > 0) console.log(`crash reasons (first line of the daemon's stderr): ${JSON.stringify(crashReasons)}`);
    if (crashCulprits.length > 0)
      console.log(
        `streams that kill the daemon alone (replay: --seed ${options.seed} --replay I): ${crashCulprits.slice(0, 20).join(', ')}`,
      );
    return {
      figures,
      ok: !figures.some(([, , v]) => v === 'FAIL'),
      streamsSent: sent,
      crashes,
      crashCulprits,
      crashReasons,
      maxOpenAfterBatch,
      legitimateOk,
      legitimateRuns,
      storedAfterRejection: storedRejected.size,
      rejectedThenAnswered,
      leftOpenAfterEnd,
      secondAccepts,
      unknownCommandsMisanswered,
      unknownCommandStatuses,
      stoppedEarly,
      seconds: (Date.now() - started) / 1000,
    };
  } finally {
    if (isAlive(gateway.pid)) await gateway.stop();
  }
}

if (isMain(import.meta.url)) {
  runMain(async () => {
    const options = parseNumberOptions(process.argv.slice(2), {
      streams: 10_000,
      batch: 500,
      concurrency: 16,
      seed: randomSeed(),
      maxCrashes: 25,
      timeLimit: 900,
      replay: -1,
      kind: -1,
    });
    console.log(`pdu-fuzz: seed ${options.seed}`);
    const result = await runPduFuzz(options);
    printSummary('PDU fuzzer', options.seed, options, result.figures);
    if (result.stoppedEarly) console.log(`note: ${result.stoppedEarly}`);
    return result.ok;
  });
}

/** The error line of a dead daemon's stderr (startGateway keeps stderr private; its wait error quotes it). */
async function crashReason(gateway: GatewayUnderTest): Promise<string> {
  const message = await gateway
    .waitForLog(() => false, 'nothing', 1)
    .then(
      () => '',
      (error: unknown) => (error instanceof Error ? error.message : String(error)),
    );
  const stderr = message.split('stderr: ')[1] ?? '';
  const lines = stderr.split('\n');
  const line =
    lines.find((l) => /^\s*[A-Za-z]*Error\b/.test(l)) ?? lines.find((l) => /Error|ERR_/.test(l)) ?? lines[0] ?? '';
  return line.trim().slice(0, 160) || 'no stderr';
}
