import { parentPort } from 'node:worker_threads';
import { describeError, errorCode, unreachable } from '../errors.js';
import { selectBackend } from '../inference/backend.js';
import { loadModel } from '../inference/model-loader.js';
import type { FromWorker, ToWorker } from './worker-protocol.js';
import { DenseNetLrp } from '../lrp/densenet-lrp.js';
import { processImages, type AnalysisEngine } from './image-work.js';

// One TensorFlow.js backend and one copy of the model per worker thread: the wasm backend runs on one
// thread, so parallelism comes from several workers.
const port = parentPort;
if (port === null) unreachable('inference-worker.js was loaded outside a worker thread');
let engine: AnalysisEngine | undefined;
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

port.on('message', (message: ToWorker) => {
  void handle(message);
});

async function handle(message: ToWorker): Promise<void> {
  if (message.type === 'init') {
    try {
      const selection = await selectBackend(message.backend, { allowSoftwareGpu: message.allowSoftwareGpu });
      const model = loadModel(message.modelDir);
      engine = { model, lrp: new DenseNetLrp(model.network, model.manifest.classes, model.manifest.preprocessing, message.lrp) };
      send({ type: 'ready', backend: selection.name, skipped: selection.skipped });
    } catch (error) {
      send({ type: 'init-failed', code: errorCode(error, 'INFERENCE_INIT'), reason: describeError(error) });
    }
    return;
  }
  if (poisoned(message)) process.exit(70);
  if (engine === undefined) {
    send({ type: 'failed', id: message.id, code: 'WORKER_NOT_READY', reason: 'the inference worker has no model loaded' });
    return;
  }
  try {
    send({ type: 'processed', id: message.id, results: await processImages(engine, message.request) });
  } catch (error) {
    send({ type: 'failed', id: message.id, code: errorCode(error, 'PROCESSING_FAILED'), reason: describeError(error) });
  }
}
