import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { StudyAssembler } from './assembly/study-assembler.js';
import type { GatewayConfig } from './config/schema.js';
import type { LrpOptions } from './lrp/composites.js';
import { StorageScp } from './dimse/storage-scp.js';
import { InferencePool } from './inference/inference-pool.js';
import { MANIFEST_FILE, readManifest } from './inference/model-manifest.js';
import { createDestinations, type Destinations } from './export/create-destinations.js';
import { Pipeline, type ModelRuntime } from './pipeline/pipeline.js';
import { StageTimings } from './pipeline/stage-timings.js';
import type { DeliveryTarget } from './pipeline/delivery-target.js';
import { deliveryTargets } from './pipeline/delivery-targets.js';
import { PipelineStore } from './store/pipeline-store.js';
import { StoreMetrics } from './store/store-metrics.js';
import { AdminServer } from './admin/admin-server.js';
import { dailySummary } from './maintenance/daily-summary.js';
import { purgeFinishedStudies } from './maintenance/retention.js';
import { ScheduledTasks } from './maintenance/scheduled-tasks.js';
import type { Logger } from './logging/logger.js';
import { InstanceIngest } from './store/instance-ingest.js';
import { JobStore } from './store/job-store.js';
import { Spool } from './store/spool.js';
import { sweepSpool } from './store/spool-sweep.js';

/** The LRP engine's options: the explain section without `target`, which the pipeline applies per job. */
function lrpSettings(explain: GatewayConfig['explain']): Partial<LrpOptions> {
  const { target: _target, ...options } = explain;
  return options;
}

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
  private readonly models = new Map<string, ModelRuntime>();
  /** Stage durations since start, summed for /metrics. */
  private readonly timings = new StageTimings();
  private pipeline: Pipeline | undefined;
  private targets = new Map<string, DeliveryTarget>();
  private destinations: Destinations | undefined;
  private admin: AdminServer | undefined;
  private tasks: ScheduledTasks | undefined;

  constructor(
    private config: GatewayConfig,
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
    // Files a failed commit left under studies/ go; rows whose file is missing are logged (see spool-sweep.ts).
    sweepSpool(spool, store, logger);
    const pending = store.countStudies('receiving');
    const ready = store.countStudies('ready');
    logger.info('job store opened', { file: storeFileOf(config), studiesReceiving: pending, studiesReady: ready });

    await this.startModels();
    this.destinations = createDestinations(config.destinations, config.dicom.aeTitle, logger);
    await Promise.all([...this.destinations.pacs.values(), ...this.destinations.ris.values()].map((d) => d.start()));
    this.targets = deliveryTargets(this.destinations);
    const pipeline = new Pipeline({
      config,
      store,
      pipelineStore: new PipelineStore(store.connection),
      models: this.models,
      targets: this.targets,
      outputsDir: path.join(spoolDirOf(config), 'outputs'),
      logger,
      timings: this.timings,
    });
    this.pipeline = pipeline;
    pipeline.start();

    this.assembler = new StudyAssembler({
      store,
      quietPeriodMs: config.assembly.quietPeriodSeconds * 1000,
      logger,
      onReady: () => pipeline.wake(),
    });
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
    this.startHousekeeping(store, spool);
    if (config.admin.enabled) await this.startAdmin(store, spool);
    return address;
  }

  /** Applies a reloaded configuration to what can change while running, and says what needs a restart. */
  reload(next: GatewayConfig): void {
    const restartNeeded = (['dicom', 'storage', 'models', 'destinations', 'inference', 'admin', 'logging'] as const).filter(
      (key) => JSON.stringify(next[key]) !== JSON.stringify(this.config[key]),
    );
    this.config = next;
    this.pipeline?.updateConfig(next);
    this.logger.info('configuration reloaded: rules, eligibility, explanation target and retry policy apply to the next job', {
      restartNeededFor: restartNeeded,
    });
  }

  private startHousekeeping(store: JobStore, spool: Spool): void {
    const { logger } = this;
    const metrics = new StoreMetrics(store.connection);
    const m = () => this.config.maintenance;
    this.tasks = new ScheduledTasks(
      [
        {
          name: 'retention',
          schedule: m().retentionSchedule,
          run: () => {
            const cutoff = Date.now() - m().retentionDays * 24 * 3600 * 1000;
            const result = purgeFinishedStudies(store.connection, spool.root, cutoff);
            if (result.studiesPurged > 0) logger.info('retention: finished studies deleted from the spool', { ...result, retentionDays: m().retentionDays });
          },
        },
        { name: 'retry-sweep', schedule: m().retrySweepSchedule, run: () => this.pipeline?.wake() },
        { name: 'daily-summary', schedule: m().summarySchedule, run: () => logger.info('daily summary', dailySummary(metrics, Date.now())) },
        {
          name: 'disk-check',
          schedule: m().diskCheckSchedule,
          run: () => {
            const free = spool.freeBytes();
            const floor = this.config.storage.minFreeDiskMB * 1048576;
            if (free < floor) logger.error('disk below storage.minFreeDiskMB: C-STOREs are being refused', { freeMB: Math.floor(free / 1048576) });
            else if (free < 2 * floor) logger.warn('disk space low: C-STOREs will be refused below storage.minFreeDiskMB', { freeMB: Math.floor(free / 1048576) });
          },
        },
      ],
      logger,
    );
    this.tasks.start();
  }

  private async startAdmin(store: JobStore, spool: Spool): Promise<void> {
    const { config } = this;
    this.admin = new AdminServer({
      host: config.admin.host,
      port: config.admin.port,
      metrics: new StoreMetrics(store.connection),
      timings: this.timings,
      logger: this.logger,
      health: {
        storeOk: () => {
          try {
            store.countStudies('receiving');
            return true;
          } catch {
            return false;
          }
        },
        freeDiskBytes: () => spool.freeBytes(),
        minFreeDiskBytes: config.storage.minFreeDiskMB * 1048576,
        models: () =>
          Object.keys(config.models).map((name) => {
            const runtime = this.models.get(name);
            const pool = runtime?.pool.status();
            // A pool with no live worker serves nothing: not 'loaded'. Fewer live than wanted is degraded
            // (the admin server compares workers with wantedWorkers).
            return {
              name,
              loaded: pool !== undefined && pool.live > 0,
              backend: runtime?.pool.backend,
              workers: pool?.live ?? 0,
              wantedWorkers: pool?.wanted ?? 0,
              restartingWorkers: pool?.restarting ?? 0,
              workerCrashes: pool?.crashes ?? 0,
            };
          }),
        dicomListening: () => this.scp !== undefined,
      },
    });
    const address = await this.admin.start();
    this.logger.info('admin endpoints ready', { url: `http://${address.address}:${address.port}/healthz` });
  }

  /** One inference pool per configured model that is present; a missing model is logged, not fatal. */
  private async startModels(): Promise<void> {
    const { config, logger } = this;
    for (const [name, dir] of Object.entries(config.models)) {
      if (!existsSync(path.join(dir, MANIFEST_FILE))) {
        logger.warn('model directory missing: studies routed to it wait until it is installed and the daemon restarted', { model: name, dir });
        continue;
      }
      const pool = await InferencePool.start({
        modelDir: dir,
        backend: config.inference.backend,
        workers: config.inference.workers,
        cores: availableParallelism(),
        logger,
        allowSoftwareGpu: config.inference.allowSoftwareGpu,
        lrp: lrpSettings(config.explain),
      });
      this.models.set(name, { pool, manifest: readManifest(dir) });
    }
  }

  async stop(): Promise<void> {
    await this.tasks?.stop();
    await this.admin?.stop();
    await this.scp?.stop(this.config.dicom.shutdownGraceSeconds * 1000);
    this.scp = undefined;
    this.assembler?.stop();
    this.assembler = undefined;
    await this.pipeline?.stop();
    this.pipeline = undefined;
    await Promise.all([...this.models.values()].map((m) => m.pool.stop()));
    this.models.clear();
    await Promise.all([...this.targets.values()].map((t) => t.stop?.()));
    this.targets.clear();
    this.store?.close();
    this.store = undefined;
  }
}
