import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { StudyAssembler } from './assembly/study-assembler.js';
import { modelDirectory } from './config/load-config.js';
import type { GatewayConfig } from './config/schema.js';
import { StorageScp } from './dimse/storage-scp.js';
import { InferencePool } from './inference/inference-pool.js';
import { MANIFEST_FILE } from './inference/model-manifest.js';
import type { Logger } from './logging/logger.js';
import { InstanceIngest } from './store/instance-ingest.js';
import { JobStore } from './store/job-store.js';
import { Spool } from './store/spool.js';

export function storeFileOf(config: GatewayConfig): string {
  return path.join(config.storage.dataDir, 'db', 'cxr-gateway.sqlite');
}

export function spoolDirOf(config: GatewayConfig): string {
  return path.join(config.storage.dataDir, 'spool');
}

/**
 * The daemon: wires the stages together and owns their lifecycle. Start order is store first, network
 * last; stop order is the reverse, so nothing is ever acknowledged without a place to record it.
 */
export class Gateway {
  private store: JobStore | undefined;
  private scp: StorageScp | undefined;
  private assembler: StudyAssembler | undefined;
  private inference: InferencePool | undefined;

  constructor(
    private readonly config: GatewayConfig,
    private readonly logger: Logger,
  ) {}

  async start(): Promise<{ host: string; port: number }> {
    const { config, logger } = this;
    const store = JobStore.open(storeFileOf(config));
    this.store = store;
    const spool = new Spool(spoolDirOf(config));
    const discarded = spool.open();
    if (discarded > 0) {
      logger.info('removed partial transfers left by an earlier stop (never acknowledged)', { count: discarded });
    }
    const pending = store.countStudies('receiving');
    const ready = store.countStudies('ready');
    logger.info('job store opened', { file: storeFileOf(config), studiesReceiving: pending, studiesReady: ready });

    this.assembler = new StudyAssembler({ store, quietPeriodMs: config.assembly.quietPeriodSeconds * 1000, logger });
    this.assembler.start();

    const ingest = new InstanceIngest({
      spool,
      store,
      logger,
      minFreeBytes: config.storage.minFreeDiskMB * 1024 * 1024,
    });
    await this.startInference();
    this.scp = new StorageScp({ config: config.dicom, sink: ingest, logger });
    const address = await this.scp.start();
    logger.info('DICOM listener ready', { host: address.host, port: address.port, aeTitle: config.dicom.aeTitle });
    return address;
  }

  /** The inference pool, when a model is configured and present (the pipeline stage uses it). */
  get inferencePool(): InferencePool | undefined {
    return this.inference;
  }

  private async startInference(): Promise<void> {
    const { config, logger } = this;
    const modelDir = modelDirectory(config);
    if (!existsSync(path.join(modelDir, MANIFEST_FILE))) {
      logger.warn('no model directory: images are received and assembled but not classified', { model: modelDir });
      return;
    }
    this.inference = await InferencePool.start({
      modelDir,
      backend: config.inference.backend,
      workers: config.inference.workers,
      cores: availableParallelism(),
      logger,
    });
  }

  async stop(): Promise<void> {
    await this.scp?.stop(this.config.dicom.shutdownGraceSeconds * 1000);
    this.scp = undefined;
    await this.inference?.stop();
    this.inference = undefined;
    this.assembler?.stop();
    this.assembler = undefined;
    this.store?.close();
    this.store = undefined;
  }
}
