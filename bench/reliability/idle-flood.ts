// Idle-socket flood: N connections held open against the daemon (idle TCP connections that send nothing,
// slow-loris ones that send a few bytes of an A-ASSOCIATE-RQ and stop, and association requests from a caller not on
// the allow-list, which get A-ASSOCIATE-RJ and then sit there), and while they are held a legitimate DCMTK storescu
// tries to store, once a second until it succeeds. The flood comes from 127.0.0.2-11, the legitimate sender from
// 127.0.0.1 (a per-source limit is part of the fix). Figures: how long until the legitimate store succeeded, how many
// tries, and how many of the flood's sockets the daemon closed (and how fast).
//
//   node dist/bench/reliability/idle-flood.js [--sockets 300] [--max-associations 16] [--give-up 90] [--seed N]

import path from 'node:path';
import {
  encodeAssociateRq,
  EXPLICIT_VR_LITTLE_ENDIAN,
  VERIFICATION_SOP_CLASS_UID,
} from '../../test/helpers/raw-scu.js';
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
  randomSeed,
  runMain,
  scratchDir,
  sleep,
  startDaemon,
  waitUntil,
  type Figure,
} from './harness.js';
import { REJECTED_CALLING_AE } from './pdu-streams.js';
import { Wire } from './wire.js';

export interface IdleFloodOptions extends Record<string, number> {
  sockets: number;
  maxAssociations: number;
  giveUp: number;
  seed: number;
}

export interface IdleFloodResult {
  figures: Figure[];
  ok: boolean;
  held: number;
  connectFailures: number;
  legitimateOk: boolean;
  secondsToSuccess: number | undefined;
  tries: number;
  closedByDaemon: Record<string, number>;
  seconds: number;
}

type FloodKind = 'idle' | 'slow-loris' | 'rejected';

export async function runIdleFlood(options: IdleFloodOptions): Promise<IdleFloodResult> {
  const started = Date.now();
  const rng = new Rng(options.seed);
  const setup = await prepareDaemon({
    dicom: {
      maxAssociations: options.maxAssociations,
      callers: { allowAny: false, allowed: [{ aeTitle: 'MODALITY' }] },
    },
  });
  const gateway = await startDaemon(setup);
  const images = await makeImages(path.join(scratchDir('flood-legit'), 'in'), 3, { seedBase: options.seed % 1000 });
  const held: Array<{ wire: Wire; kind: FloodKind; openedAt: number; closedAt?: number }> = [];
  let connectFailures = 0;
  const rq = (callingAe: string): Buffer =>
    encodeAssociateRq({
      callingAe,
      calledAe: 'CXR_GATEWAY',
      contexts: [{ abstractSyntax: VERIFICATION_SOP_CLASS_UID, transferSyntaxes: [EXPLICIT_VR_LITTLE_ENDIAN] }],
    });
  try {
    // Open the flood, 20 at a time.
    const kinds: FloodKind[] = Array.from({ length: options.sockets }, (_, i) =>
      i % 6 < 3 ? 'idle' : i % 6 === 3 ? 'slow-loris' : 'rejected',
    );
    for (let i = 0; i < kinds.length; i += 20) {
      await Promise.all(
        kinds.slice(i, i + 20).map(async (kind, k) => {
          const index = i + k;
          try {
            // Ten attacker addresses (127.0.0.2-11); the legitimate storescu comes from 127.0.0.1.
            const wire = await Wire.connect(setup.port, 3000, `127.0.0.${2 + (index % 10)}`);
            const entry: { wire: Wire; kind: FloodKind; openedAt: number; closedAt?: number } = {
              wire,
              kind,
              openedAt: Date.now(),
            };
            held.push(entry);
            if (kind === 'slow-loris') wire.write(rq('MODALITY').subarray(0, 6 + rng.int(40)));
            if (kind === 'rejected') wire.write(rq(REJECTED_CALLING_AE));
            void wire.closeWithin(options.giveUp * 1000 + 10_000).then((closed) => {
              if (closed) entry.closedAt = Date.now();
            });
          } catch {
            connectFailures += 1;
          }
        }),
      );
    }
    const floodUp = Date.now();
    // The legitimate sender: storescu once a second until it succeeds or we give up.
    let tries = 0;
    let secondsToSuccess: number | undefined;
    let lastFailure = '';
    while ((Date.now() - floodUp) / 1000 < options.giveUp) {
      tries += 1;
      const result = await legitimateStore(
        setup.port,
        images.map((i) => i.path),
        10,
      );
      if (result.ok) {
        secondsToSuccess = (Date.now() - floodUp) / 1000;
        break;
      }
      lastFailure = result.detail;
      await sleep(1000);
    }
    // Rejected requests must be closed promptly by a conformant acceptor: give them 2 s past the legitimate store.
    await waitUntil(() => held.every((h) => h.kind !== 'rejected' || h.closedAt !== undefined), 2000);
    // A socket closed within 0.5 s of its connect was dropped at once (over the socket cap); others the daemon
    // closed later (a timeout, a rejection) or still holds.
    const dropped = held.filter((h) => h.closedAt !== undefined && h.closedAt - h.openedAt < 500);
    const closedByDaemon: Record<string, number> = { idle: 0, 'slow-loris': 0, rejected: 0 };
    const closeTimes: Record<string, number[]> = { idle: [], 'slow-loris': [], rejected: [] };
    for (const h of held) {
      if (h.closedAt !== undefined && !dropped.includes(h)) {
        closedByDaemon[h.kind] = (closedByDaemon[h.kind] ?? 0) + 1;
        closeTimes[h.kind]?.push((h.closedAt - h.openedAt) / 1000);
      }
    }
    const count = (k: FloodKind): number => held.filter((h) => h.kind === k && !dropped.includes(h)).length;
    const median = (xs: number[] | undefined): string => {
      if (!xs || xs.length === 0) return '-';
      const sorted = [...xs].sort((a, b) => a - b);
      return (sorted[Math.floor(sorted.length / 2)] as number).toFixed(1);
    };
    const rejectedAnswered = held.filter((h) => h.kind === 'rejected' && h.wire.pdus.length > 0).length;
    const rejectedLeftOpen = held.filter(
      (h) => h.kind === 'rejected' && h.wire.pdus.length > 0 && h.closedAt === undefined,
    ).length;
    const alive = isAlive(gateway.pid);
    const figures: Figure[] = [
      ['flood sockets opened', held.length],
      [
        '  held by the daemon (idle/slow-loris/rejected)',
        `${count('idle')}/${count('slow-loris')}/${count('rejected')}`,
      ],
      ['flood connections refused at connect', connectFailures],
      ['dicom.maxAssociations', options.maxAssociations],
      [
        'legitimate storescu succeeded',
        secondsToSuccess !== undefined ? 'yes' : `no (gave up after ${options.giveUp} s)`,
        check(secondsToSuccess !== undefined),
      ],
      [
        '  seconds from flood to success',
        secondsToSuccess === undefined ? '-' : secondsToSuccess.toFixed(1),
        check(secondsToSuccess !== undefined && secondsToSuccess <= 5),
      ],
      ['  storescu tries', tries],
      ['flood sockets dropped at connect (over the socket cap)', dropped.length],
      [
        'held sockets closed by the daemon later: idle',
        `${closedByDaemon.idle}/${count('idle')} (median ${median(closeTimes.idle)} s)`,
      ],
      [
        '  slow-loris',
        `${closedByDaemon['slow-loris']}/${count('slow-loris')} (median ${median(closeTimes['slow-loris'])} s)`,
      ],
      ['  rejected', `${closedByDaemon.rejected}/${count('rejected')} (median ${median(closeTimes.rejected)} s)`],
      [
        'A-ASSOCIATE-RJ answered, still open 2 s after the store',
        `${rejectedLeftOpen}/${rejectedAnswered}`,
        check(rejectedLeftOpen === 0),
      ],
      ['daemon alive', alive ? 'yes' : 'no', check(alive)],
      ['seconds', elapsedSeconds(started)],
    ];
    if (secondsToSuccess === undefined) console.log(`last storescu failure: ${lastFailure}`);
    return {
      figures,
      ok: !figures.some(([, , v]) => v === 'FAIL'),
      held: held.length,
      connectFailures,
      legitimateOk: secondsToSuccess !== undefined,
      secondsToSuccess,
      tries,
      closedByDaemon,
      seconds: (Date.now() - started) / 1000,
    };
  } finally {
    for (const h of held) h.wire.destroy();
    if (isAlive(gateway.pid)) await gateway.stop();
  }
}

if (isMain(import.meta.url)) {
  runMain(async () => {
    const options = parseNumberOptions(process.argv.slice(2), {
      sockets: 300,
      maxAssociations: 16,
      giveUp: 90,
      seed: randomSeed(),
    });
    console.log(`idle-flood: seed ${options.seed}`);
    const result = await runIdleFlood(options);
    printSummary('idle-socket flood', options.seed, options, result.figures);
    return result.ok;
  });
}
