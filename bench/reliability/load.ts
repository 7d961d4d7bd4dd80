// Load: N associations (DCMTK storescu processes) at once, each sending M images, against the real daemon with the
// folder pipeline. Invariants: every storescu succeeds, every image is stored once, processed once (one written
// result per source instance), one SC file per image and one ORU per study, no job failed.
//
//   node dist/bench/reliability/load.js [--associations 10] [--images 100] [--images-per-study 10] [--seed N] [--time-limit 600]

import path from 'node:path';
import {
  auditOutputs,
  check,
  elapsedSeconds,
  formatStates,
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
  startDaemon,
  storePath,
  storedInstances,
  waitUntil,
  type Figure,
} from './harness.js';
import { newUid } from '../../test/helpers/dicom-factory.js';

export interface LoadOptions extends Record<string, number> {
  associations: number;
  images: number;
  imagesPerStudy: number;
  seed: number;
  timeLimit: number;
}

export interface LoadResult {
  figures: Figure[];
  ok: boolean;
  sent: number;
  sendersOk: number;
  stored: number;
  processedOnce: number;
  processedTwice: number;
  scFiles: number;
  oruFiles: number;
  studies: number;
  failedJobs: number;
  storeSeconds: number;
  totalSeconds: number;
}

export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  const started = Date.now();
  const dir = scratchDir('load');
  // The seed picks the image content (each image's noise); the UIDs are fresh each run.
  const batches = [];
  for (let a = 0; a < options.associations; a += 1) {
    const images = [];
    for (let first = 0; first < options.images; first += options.imagesPerStudy) {
      const count = Math.min(options.imagesPerStudy, options.images - first);
      images.push(
        ...(await makeImages(path.join(dir, `a${a}`), count, {
          studyInstanceUid: newUid(),
          seedBase: options.seed + a * 1000 + first,
        })),
      );
    }
    batches.push(images);
  }
  const all = batches.flat();
  const studies = new Set(all.map((i) => i.studyInstanceUid)).size;
  const setup = await prepareDaemon();
  const gateway = await startDaemon(setup);
  try {
    const storeStart = Date.now();
    const results = await Promise.all(
      batches.map((b) =>
        legitimateStore(
          setup.port,
          b.map((i) => i.path),
          120,
        ),
      ),
    );
    const storeSeconds = (Date.now() - storeStart) / 1000;
    const storeFile = storePath(setup.workDir);
    const deadline = Math.max(10_000, options.timeLimit * 1000 - (Date.now() - started));
    await waitUntil(
      () => {
        const audit = auditOutputs(setup.workDir, storeFile);
        return audit.scFiles.length >= all.length && audit.oruFiles.length >= studies;
      },
      deadline,
      500,
    );
    // Settle: anything still queued would show as a non-terminal job.
    await waitUntil(
      () => {
        const states = auditOutputs(setup.workDir, storeFile).jobStates;
        return Object.keys(states).every((s) => s === 'done' || s === 'failed');
      },
      20_000,
      500,
    );
    const audit = auditOutputs(setup.workDir, storeFile);
    const stored = storedInstances(storeFile);
    const storedOfOurs = all.filter((i) => stored.has(i.sopInstanceUid)).length;
    const processedOnce = all.filter((i) => audit.writtenPerSource.get(i.sopInstanceUid) === 1).length;
    const processedTwice = all.filter((i) => (audit.writtenPerSource.get(i.sopInstanceUid) ?? 0) > 1).length;
    const sendersOk = results.filter((r) => r.ok).length;
    const failedJobs = audit.jobStates.failed ?? 0;
    const totalSeconds = (Date.now() - started) / 1000;
    const figures: Figure[] = [
      ['associations at once', options.associations],
      ['images sent', all.length],
      ['studies', studies],
      ['storescu runs succeeded', `${sendersOk}/${results.length}`, check(sendersOk === results.length)],
      ['instances stored', storedOfOurs, check(storedOfOurs === all.length)],
      ['processed exactly once', processedOnce, check(processedOnce === all.length)],
      ['processed more than once', processedTwice, check(processedTwice === 0)],
      ['SC files in the PACS folder', audit.scFiles.length, check(audit.scFiles.length === all.length)],
      ['ORU files in the RIS folder', audit.oruFiles.length, check(audit.oruFiles.length === studies)],
      ['jobs', formatStates(audit.jobStates), check(failedJobs === 0)],
      ['deliveries', formatStates(audit.deliveryStates)],
      ['store phase (s)', storeSeconds.toFixed(1)],
      ['images stored per second', (all.length / storeSeconds).toFixed(1)],
      ['daemon alive at the end', isAlive(gateway.pid) ? 'yes' : 'no', check(isAlive(gateway.pid))],
      ['total (s)', elapsedSeconds(started)],
    ];
    for (const r of results.filter((x) => !x.ok)) console.error(`storescu failed: ${r.detail}`);
    return {
      figures,
      ok: !figures.some(([, , v]) => v === 'FAIL'),
      sent: all.length,
      sendersOk,
      stored: storedOfOurs,
      processedOnce,
      processedTwice,
      scFiles: audit.scFiles.length,
      oruFiles: audit.oruFiles.length,
      studies,
      failedJobs,
      storeSeconds,
      totalSeconds,
    };
  } finally {
    await gateway.stop();
  }
}

if (isMain(import.meta.url)) {
  runMain(async () => {
    const options = parseNumberOptions(process.argv.slice(2), {
      associations: 10,
      images: 100,
      imagesPerStudy: 10,
      seed: randomSeed(),
      timeLimit: 600,
    });
    console.log(`load: seed ${options.seed}`);
    const result = await runLoad(options);
    printSummary('load: concurrent associations', options.seed, options, result.figures);
    return result.ok;
  });
}
