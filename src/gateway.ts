import path from 'node:path';
import { StudyAssembler } from './assembly/study-assembler.js';
import type { GatewayConfig } from './config/schema.js';
import { StorageScp } from './dimse/storage-scp.js';
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
    this.scp = new StorageScp({ config: config.dicom, sink: ingest, logger });
    const address = await this.scp.start();
    logger.info('DICOM listener ready', { host: address.host, port: address.port, aeTitle: config.dicom.aeTitle });
    return address;
  }

  async stop(): Promise<void> {
    await this.scp?.stop(this.config.dicom.shutdownGraceSeconds * 1000);
    this.scp = undefined;
    this.assembler?.stop();
    this.assembler = undefined;
    this.store?.close();
    this.store = undefined;
  }
}
