import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parentPort } from 'node:worker_threads';
import { describeError, errorCode, unreachable } from '../errors.js';
import type { InferenceEngine } from '../engines/engine.js';
import { createEngine } from '../engines/select-engine.js';
import type { FromWorker, ToWorker } from './worker-protocol.js';
import { processImages } from './image-work.js';

// One engine (and its copy of the model) per worker thread. TF.js on wasm runs on one thread, so parallelism
// comes from several workers; ONNX Runtime parallelises inside a run, so one worker uses the cores.
const port = parentPort;
if (port === null) unreachable('inference-worker.js was loaded outside a worker thread');
let engine: InferenceEngine | undefined;
const send = (message: FromWorker) => port.postMessage(message);
/**
 * For tests only (never set in production): this worker exits, as a decoder abort would kill it, when a
 * request holds an image whose SOP Instance UID is this value.
 * It lets tests prove with a real crash that the pool heals and that a poison image is failed.
 */
const crashOn = process.env.CXR_GATEWAY_TEST_CRASH_ON;

function poisoned(message: Exclude<ToWorker, { type: 'init' }>): boolean {
  if (crashOn === undefined || crashOn === '') return false;
  return message.request.images.some((i) => i.sopInstanceUid === crashOn);
}

/**
 * For tests only (never set in production): a folder. A `process` request holding an image whose SOP Instance
 * UID names a file in it holds this worker: it writes `<uid>.held` there, then waits until the file `<uid>` is
 * removed. Tests use it to prove what the gateway does while a later job is still being classified, without
 * betting on how long classification or a delivery takes.
 */
const holdDir = process.env.CXR_GATEWAY_TEST_HOLD_DIR;

async function holdIfAsked(message: Exclude<ToWorker, { type: 'init' }>): Promise<void> {
  if (holdDir === undefined || holdDir === '' || message.type !== 'process') return;
  for (const image of message.request.images) {
    const gate = path.join(holdDir, image.sopInstanceUid);
    if (!existsSync(gate)) continue;
    writeFileSync(`${gate}.held`, '');
    while (existsSync(gate)) await sleep(20);
  }
}

port.on('message', (message: ToWorker) => {
  void handle(message);
});

async function handle(message: ToWorker): Promise<void> {
  if (message.type === 'init') {
    try {
      engine = await createEngine(message.engine);
      send({ type: 'ready', engine: engine.info });
    } catch (error) {
      send({ type: 'init-failed', code: errorCode(error, 'INFERENCE_INIT'), reason: describeError(error) });
    }
    return;
  }
  if (poisoned(message)) process.exit(70);
  await holdIfAsked(message);
  if (engine === undefined) {
    send({
      type: 'failed',
      id: message.id,
      code: 'WORKER_NOT_READY',
      reason: 'the inference worker has no model loaded',
    });
    return;
  }
  try {
    send({ type: 'processed', id: message.id, results: await processImages(engine, message.request) });
  } catch (error) {
    send({ type: 'failed', id: message.id, code: errorCode(error, 'PROCESSING_FAILED'), reason: describeError(error) });
  }
}
