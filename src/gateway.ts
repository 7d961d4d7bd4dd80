import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { StudyAssembler } from './assembly/study-assembler.js';
import { nodeNameOf, type GatewayConfig } from './config/schema.js';
import { lrpSettings } from './analysis/engine-options.js';
import { StorageScp } from './dimse/storage-scp.js';
import { CommitmentRegistry } from './dimse/commitment-registry.js';
import { CommitmentRelay } from './store/commitment-relay.js';
import { InferencePool } from './analysis/inference-pool.js';
import { MANIFEST_FILE, readManifest } from './inference/model-manifest.js';
import { createDestinations, type Destinations } from './export/create-destinations.js';
import { Pipeline, type ModelRuntime } from './pipeline/pipeline.js';
import { StageTimings } from './logging/stage-timings.js';
import type { DeliveryTarget } from './export/delivery-target.js';
import { deliveryTargets } from './export/delivery-targets.js';
import { modelDirectoryProblems } from './config/model-dirs.js';
import { checkExplainTarget } from './config/explain-target.js';
import type { ModelStatus, ParkedCount, ReloadRecord } from './admin/health.js';
import { ConsoleService, RESTART_NEEDED_KEYS, type AuditLog } from './admin/console-service.js';
import type { ConsoleBackend } from './admin/console-types.js';
import { buildHealth, type HealthSource } from './admin/health.js';
import { clusterView } from './admin/cluster-view.js';
import { NodeRegistry } from './store/nodes.js';
import { loadConfig } from './config/load-config.js';
import type { ConsoleQueries } from './store/console-queries.js';
import { describeError } from './errors.js';
import { PipelineStore } from './store/pipeline-store.js';
import { StoreMetrics } from './store/store-metrics.js';
import type { SqlDatabase } from './store/sql-database.js';
import { AdminServer } from './admin/admin-server.js';
import { AuthService } from './admin/auth-service.js';
import { AuditTrail } from './store/audit-trail.js';
import { createAuditForwarder } from './export/audit-forwarder.js';
import { ConsoleStore } from './store/console-store.js';
import { dailySummary } from './maintenance/daily-summary.js';
import { purgeFinishedStudies } from './maintenance/retention.js';
import { ScheduledTasks } from './maintenance/scheduled-tasks.js';
import type { Logger } from './logging/logger.js';
import type { Stage, StageStatus } from './logging/lifecycle.js';
import { InstanceIngest } from './store/instance-ingest.js';
import type { JobStore } from './store/job-store.js';
import { changeMark } from './store/change-mark.js';
import { openStore, type StoreLocation } from './store/open-store.js';
import { checkSpoolMarker, storeClusterId } from './store/spool-marker.js';
import { Spool } from './store/spool.js';
import { sweepSpool } from './store/spool-sweep.js';

/**
 * On a shared spool, a file without a row is left alone until it is this old: far longer than any node takes
 * from renaming a received file into studies/ to committing its row (a statement timeout is seconds).
 */
const SHARED_SPOOL_ORPHAN_AGE_MS = 60 * 60 * 1000;

export function storeFileOf(config: GatewayConfig): string {
  return path.join(config.storage.dataDir, 'db', 'cxr-gateway.sqlite');
}

/** The job store's engine and place: storage.database's PostgreSQL URL, else the SQLite file under dataDir. */
export function storeLocationOf(config: GatewayConfig): StoreLocation {
  const { database, postgres } = config.storage;
  if (database === undefined) return { engine: 'sqlite', file: storeFileOf(config) };
  return {
    engine: 'postgres',
    url: database,
    statementTimeoutMs: postgres.statementTimeoutSeconds * 1000,
    connectTimeoutMs: postgres.connectTimeoutSeconds * 1000,
    ...(postgres.passwordFile === undefined ? {} : { passwordFile: postgres.passwordFile }),
  };
}

export function spoolDirOf(config: GatewayConfig): string {
  return path.join(config.storage.dataDir, 'spool');
}

/** What the console reads and does in the job store, made on the daemon's connection (see GatewayOptions.console). */
export interface ConsoleStoreParts {
  queries: ConsoleQueries;
  audit: AuditLog;
}

export interface GatewayOptions {
  /** The config file the daemon runs on (the console's rules editor writes it); undefined: the embedded default. */
  configPath?: string;
  /** The package version, shown on the console's dashboard. */
  version?: string;
  /**
   * The console's store side on the daemon's job store connection: store/console-store.ts ConsoleStore and
   * store/audit-trail.ts AuditTrail. Without it the admin port serves /healthz and /metrics only.
   */
  console?: (db: SqlDatabase) => ConsoleStoreParts;
  /** How often the store watch reads the store's change mark (store/change-mark.ts): 2 s on SQLite, 1 s on PostgreSQL. */
  storeWatchMs?: number;
}

/** The console's store side on the daemon's job store connection, its actions audited in the daemon's one trail. */
function consoleStoreParts(db: SqlDatabase, audit: AuditTrail): ConsoleStoreParts {
  return { queries: new ConsoleStore(db, audit), audit };
}

/**
 * The daemon: wires the stages together and owns their lifecycle (logging/lifecycle.ts). Start order is store,
 * analysis, export, pipeline, assembly, DICOM listener, maintenance, admin: store first, network last. Stop
 * order is the reverse, with ONE deadline (now + dicom.shutdownGraceSeconds) shared by every stage, so nothing
 * is ever acknowledged without a place to record it, and no silent peer holds the shutdown past the deadline.
 */
export class Gateway {
  /** The one audit trail (store/audit-trail.ts): DICOM, HL7, security and admin events go to the same table. */
  private audit: AuditTrail | undefined;
  private scp: StorageScp | undefined;
  /** Storage commitment reports meet their waiting PACS deliveries here (the SCP receives, destinations wait). */
  private readonly commitments: CommitmentRegistry;
  private assembler: StudyAssembler | undefined;
  private readonly models = new Map<string, ModelRuntime>();
  /** Stage durations since start, summed for /metrics. */
  private readonly timings = new StageTimings();
  private pipeline: Pipeline | undefined;
  private targets = new Map<string, DeliveryTarget>();
  /** Reloads run one after the other (each may start destinations). */
  private reloading: Promise<void> = Promise.resolve();
  /** Destinations retired by a reload, finishing their sends in flight. */
  private readonly draining = new Set<Promise<void>>();
  private admin: AdminServer | undefined;
  private tasks: ScheduledTasks | undefined;
  /** The stages started so far, in start order: stop() stops them in reverse, /healthz reads their status(). */
  private stages: Stage[] = [];
  /** The outcome of the last reload (SIGHUP, file change, console); /healthz is degraded while it is a refusal. */
  private lastReloadRecord: ReloadRecord | undefined;
  private consoleParts: ConsoleStoreParts | undefined;
  private consoleService: ConsoleService | undefined;
  private readonly startedAt = Date.now();
  private watch: Stage | undefined;

  constructor(
    private config: GatewayConfig,
    private readonly logger: Logger,
    private readonly options: GatewayOptions = {},
  ) {
    this.commitments = new CommitmentRegistry({ logger });
  }

  /** The DICOM listener's address; undefined on a node without the receive role (it runs no listener). */
  async start(): Promise<{ host: string; port: number } | undefined> {
    const { config, logger } = this;
    const opened = openStore(storeLocationOf(config), 'write');
    const store = opened.store;
    // Nodes that share a PostgreSQL store: a PACS's commitment report may reach any receive node, the waiting
    // delivery runs on one; reports meet their waiters through the store.
    if (store.connection.dialect === 'postgres')
      this.commitments.relayThrough(new CommitmentRelay(store.connection, nodeNameOf(config.cluster)));
    const audit = new AuditTrail(store.connection);
    this.audit = audit;
    this.stages.push(this.storeStage(store));
    // Issue 17 (audit): right after the store, so it is stopped among the last and forwards what the other
    // stages record while they stop; it reads the audit table only, so DICOM never waits for the repository.
    const auditForwarder = createAuditForwarder(config.audit, config.dicom.aeTitle, store.connection, logger);
    if (auditForwarder !== undefined) await this.startStage(auditForwarder);
    // Before anything touches the spool (even removing partial transfers): is it this store's?
    const marker = await checkSpoolMarker(spoolDirOf(config), storeClusterId(store.connection), opened.engine);
    if (marker !== 'matched') {
      logger.info(`spool marker ${marker}`, { event: 'STORE-2013', spool: spoolDirOf(config), outcome: marker });
    }
    // PostgreSQL means a spool other nodes may be writing to right now (see Spool and sweepSpool).
    const shared = opened.engine === 'postgres';
    const spool = new Spool(spoolDirOf(config), shared ? nodeNameOf(config.cluster) : undefined);
    const discarded = spool.open();
    if (discarded > 0) {
      logger.info('removed partial transfers left by an earlier stop (never acknowledged)', {
        event: 'STORE-2002',
        count: discarded,
      });
    }
    // Files a failed commit left under studies/ go; rows whose file is missing are logged (see spool-sweep.ts).
    sweepSpool(spool, store, logger, { orphanMinAgeMs: shared ? SHARED_SPOOL_ORPHAN_AGE_MS : 0 });
    const pending = store.countStudies('receiving');
    const ready = store.countStudies('ready');
    logger.info('job store opened', {
      event: 'STORE-2001',
      engine: opened.engine,
      store: opened.where,
      studiesReceiving: pending,
      studiesReady: ready,
    });

    // A node without the analyze role never runs a model: it loads none (a DenseNet-201 is hundreds of MB per worker).
    if (config.cluster.roles.includes('analyze')) await this.startModels();
    else
      logger.info('no model loaded: this node does not analyse (cluster.roles)', {
        event: 'ANALYSIS-5018',
        roles: config.cluster.roles,
      });
    this.stages.push(this.analysisStage());
    const destinations = createDestinations(config.destinations, config.dicom.aeTitle, logger, audit, this.commitments);
    await this.startStage(this.exportStage(destinations));
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
    await this.startStage(pipeline);

    // A node without the receive role (issue 20: cluster.roles) runs no DICOM listener and assembles no study: the
    // receive nodes do, into the shared store.
    const receives = config.cluster.roles.includes('receive');
    const address = receives ? await this.startReceiving(store, spool, pipeline, audit) : undefined;
    this.startHousekeeping(store, spool);
    // Not a listed stage (/healthz's stages stay the daemon's parts); stopped first in stop().
    this.watch = this.storeWatch(store);
    await this.watch.start();
    if (config.admin.enabled) await this.startAdmin(store, spool);
    return address;
  }

  /** Study assembly and the DICOM listener (a receive node's part). */
  private async startReceiving(
    store: JobStore,
    spool: Spool,
    pipeline: Pipeline,
    audit: AuditTrail,
  ): Promise<{ host: string; port: number }> {
    const { config, logger } = this;
    this.assembler = new StudyAssembler({
      store,
      quietPeriodMs: config.assembly.quietPeriodSeconds * 1000,
      logger,
      onReady: () => pipeline.wake(),
    });
    await this.startStage(this.assembler);

    const ingest = new InstanceIngest({
      spool,
      store,
      logger,
      minFreeBytes: config.storage.minFreeDiskMB * 1024 * 1024,
    });
    // Associations, studies received and TLS failures go to the job store's audit trail (issue 17).
    // Storage commitment reports that PACSs send on associations of their own arrive here too.
    const scp = new StorageScp({ config: config.dicom, sink: ingest, logger, audit, commitments: this.commitments });
    this.scp = scp;
    this.stages.push(scp);
    const address = await scp.start();
    logger.info('DICOM listener ready', {
      event: 'DIMSE-1000',
      host: address.host,
      port: address.port,
      ...(address.tlsPort === undefined ? {} : { tlsPort: address.tlsPort }),
      aeTitle: config.dicom.aeTitle,
    });
    return address;
  }

  /**
   * Applies a reloaded configuration to what can change while running, and says what needs a restart.
   * Destinations added or changed become live before the rules that name them (new ones are created and
   * started first; if one cannot start, the whole reload is refused and the running configuration stays);
   * replaced and removed ones finish their sends in flight, then stop. So no rule ever routes to a destination
   * that is not live, and a delivery whose destination was removed waits (visible) until it is back.
   * A reload is refused before changing anything when explain.target names a class a running model lacks.
   * Never rejects: resolves with the outcome, which is also kept for /healthz (`trigger`: SIGHUP, file change,
   * console...).
   */
  reload(next: GatewayConfig, trigger = 'SIGHUP'): Promise<ReloadRecord> {
    const run = this.reloading.then(async () => {
      let refusal: string | undefined;
      // A renewed admin HTTPS certificate is taken on SIGHUP whatever the config says (admin.* else needs a restart).
      if (trigger === 'SIGHUP') this.admin?.reloadTls();
      try {
        // Models need a restart to change, so the running ones' manifests are the ones the new target must fit.
        checkExplainTarget(
          next.explain.target,
          [...this.models].map(([name, m]) => [name, m.manifest.classes] as const),
        );
        refusal = await this.applyReload(next);
      } catch (error) {
        refusal = describeError(error);
        this.logger.error('configuration reload refused: keeping the running configuration', {
          event: 'CONFIG-9002',
          trigger,
          error: refusal,
        });
      }
      return this.recordReload(trigger, refusal);
    });
    this.reloading = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  /**
   * A reload refused before it reached the gateway (the file does not load or validate: cli/main.ts reload()):
   * recorded like any other, so /healthz says the file on disk is not what runs.
   */
  reloadRefused(trigger: string, error: string): ReloadRecord {
    return this.recordReload(trigger, error);
  }

  /** The last reload's outcome since start; undefined when there was none. */
  lastReload(): ReloadRecord | undefined {
    return this.lastReloadRecord;
  }

  private recordReload(trigger: string, refusal: string | undefined): ReloadRecord {
    const record: ReloadRecord = { at: Date.now(), ok: refusal === undefined, trigger, error: refusal ?? null };
    this.lastReloadRecord = record;
    return record;
  }

  /** The console's backend (undefined until the admin port started with a console store). */
  console(): ConsoleBackend | undefined {
    return this.consoleService;
  }

  /** Applies `next`; returns why it was refused (nothing changed), or undefined once applied. */
  private async applyReload(next: GatewayConfig): Promise<string | undefined> {
    const { logger } = this;
    const previous = this.config;
    // The DICOM TLS certificate, key and CA files are re-read on every reload; a bad one refuses the reload.
    try {
      this.scp?.reloadTls();
    } catch (error) {
      return `the DICOM TLS files could not be re-read: ${describeError(error)}`;
    }
    const restartNeeded = RESTART_NEEDED_KEYS.filter(
      (key) => JSON.stringify(next[key]) !== JSON.stringify(previous[key]),
    );
    const plan = destinationChanges(previous.destinations, next.destinations);
    let created: Destinations | undefined;
    if (plan.added.pacs.length + plan.added.ris.length > 0) {
      // The calling AE of the running DICOM listener (dicom.* needs a restart) for new PACS destinations too.
      created = createDestinations(plan.added, previous.dicom.aeTitle, logger, this.audit, this.commitments);
      try {
        await startAll(created);
      } catch (error) {
        await stopAll(created);
        logger.error(
          'configuration reload refused: a new destination could not start; keeping the running configuration',
          { event: 'CONFIG-9003', error: describeError(error) },
        );
        return `a new destination could not start: ${describeError(error)}`;
      }
    }
    const targets = new Map(this.targets);
    const retired: DeliveryTarget[] = [];
    for (const name of plan.retired) {
      const old = targets.get(name);
      if (old !== undefined) retired.push(old);
      targets.delete(name);
    }
    if (created !== undefined) for (const [name, target] of deliveryTargets(created)) targets.set(name, target);
    this.config = next;
    this.targets = targets;
    this.pipeline?.updateConfig(next, targets);
    for (const target of retired) {
      const drained = (target.drain ?? target.stop ?? (async () => undefined)).call(target).catch((error: unknown) => {
        logger.warn('a retired destination did not stop cleanly', {
          event: 'EXPORT-6013',
          destination: target.name,
          error: describeError(error),
        });
      });
      this.draining.add(drained);
      void drained.finally(() => this.draining.delete(drained));
    }
    logger.info(
      'configuration reloaded: rules, eligibility, explanation target, retry policy and destinations apply now',
      {
        event: 'CONFIG-9004',
        restartNeededFor: restartNeeded,
        destinationsAdded: plan.addedNames,
        destinationsRemoved: plan.removedNames,
      },
    );
    return undefined;
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
            if (result.studiesPurged > 0)
              logger.info('retention: finished studies deleted from the spool', {
                event: 'MAINT-8003',
                ...result,
                retentionDays: m().retentionDays,
              });
          },
        },
        { name: 'retry-sweep', schedule: m().retrySweepSchedule, run: () => this.pipeline?.wake() },
        {
          name: 'daily-summary',
          schedule: m().summarySchedule,
          run: () => logger.info('daily summary', { event: 'MAINT-8004', ...dailySummary(metrics, Date.now()) }),
        },
        {
          name: 'disk-check',
          schedule: m().diskCheckSchedule,
          run: () => {
            const free = spool.freeBytes();
            const floor = this.config.storage.minFreeDiskMB * 1048576;
            if (free < floor)
              logger.error('disk below storage.minFreeDiskMB: C-STOREs are being refused', {
                event: 'MAINT-8005',
                freeMB: Math.floor(free / 1048576),
              });
            else if (free < 2 * floor)
              logger.warn('disk space low: C-STOREs will be refused below storage.minFreeDiskMB', {
                event: 'MAINT-8006',
                freeMB: Math.floor(free / 1048576),
              });
          },
        },
      ],
      logger,
    );
    void this.startStage(this.tasks);
  }

  private async startAdmin(store: JobStore, spool: Spool): Promise<void> {
    const { config, logger } = this;
    const nodes = new NodeRegistry(store.connection);
    const health: HealthSource = {
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
      models: () => this.modelStatuses(),
      // A node without the receive role listens for nothing: not a problem there.
      dicomListening: () => !this.config.cluster.roles.includes('receive') || this.scp?.status().state === 'running',
      deliveries: () => this.pipeline?.deliveryTroubles() ?? [],
      alertAfterSeconds: () => this.config.delivery.alertAfterMinutes * 60,
      stages: () => this.stageStatuses(),
      parked: () => this.parkedDeliveries(),
      lastReload: () => this.lastReloadRecord,
      cluster: () =>
        clusterView(
          nodes,
          { name: nodeNameOf(this.config.cluster), roles: this.config.cluster.roles },
          this.config.cluster.leaseSeconds,
          Date.now(),
        ),
    };
    const audit = this.audit ?? new AuditTrail(store.connection);
    this.consoleParts = this.options.console?.(store.connection) ?? consoleStoreParts(store.connection, audit);
    {
      const { configPath } = this.options;
      this.consoleService = new ConsoleService({
        queries: this.consoleParts.queries,
        audit: this.consoleParts.audit,
        config: () => this.config,
        configPath,
        loadConfig: (file) => loadConfig(file).config,
        health: () => buildHealth(health),
        models: () => this.modelStatuses(),
        freeDiskBytes: () => spool.freeBytes(),
        wake: () => this.pipeline?.wake(),
        reload: (next, trigger) => this.reload(next, trigger),
        lastReload: () => this.lastReloadRecord,
        nodes,
        version: this.options.version ?? 'unknown',
        startedAt: this.startedAt,
        logger,
      });
    }
    this.admin = new AdminServer({
      host: config.admin.host,
      port: config.admin.port,
      metrics: new StoreMetrics(store.connection),
      timings: this.timings,
      logger,
      health,
      settings: config.admin,
      // admin.tls: failed handshakes are security audit events (issue 17).
      audit: this.consoleParts.audit,
      console: this.consoleService,
      auth: new AuthService(store.connection, {
        sessionIdleMinutes: config.admin.sessionIdleMinutes,
        sessionMaxHours: config.admin.sessionMaxHours,
      }),
    });
    this.stages.push(this.admin);
    const address = await this.admin.start();
    logger.info('admin endpoints ready', {
      event: 'GATEWAY-7010',
      url: `${this.admin.secure ? 'https' : 'http'}://${address.address}:${address.port}/healthz`,
    });
  }

  private modelStatuses(): ModelStatus[] {
    // A node that does not analyse has no model to report (none is missing there).
    if (!this.config.cluster.roles.includes('analyze')) return [];
    return Object.keys(this.config.models).map((name) => modelStatus(name, this.models.get(name)));
  }

  /** Parked deliveries by destination, from the console's store side (none known without it). */
  private parkedDeliveries(): ParkedCount[] {
    const queries = this.consoleParts?.queries;
    if (queries === undefined) return [];
    return queries
      .destinationActivity()
      .filter((a) => a.parked > 0)
      .map((a) => ({ destination: a.destination, parked: a.parked }));
  }

  /**
   * The store watch: the CLI (`deliveries release`, `reprocess`) and, on PostgreSQL, other nodes commit to the job
   * store from another process, which the pipeline's timers know nothing of. Every storeWatchMs it reads the store's
   * change mark (store/change-mark.ts) and wakes the pipeline when it moved.
   */
  private storeWatch(store: JobStore): Stage {
    let state: StageStatus['state'] = 'starting';
    let timer: NodeJS.Timeout | undefined;
    let seen: number | undefined;
    let failing = false;
    const read = () => changeMark(store.connection);
    const check = () => {
      try {
        const now = read();
        failing = false;
        if (seen !== undefined && now !== seen) this.pipeline?.wake();
        seen = now;
      } catch (error) {
        if (!failing)
          this.logger.error('store watch: cannot read the job store change mark', {
            event: 'ADMIN-7208',
            error: describeError(error),
          });
        failing = true;
      }
    };
    return {
      name: 'store-watch',
      start: async () => {
        check();
        // PostgreSQL: other nodes' work arrives this way too, so it is read more often (one round trip each).
        timer = setInterval(
          check,
          this.options.storeWatchMs ?? (store.connection.dialect === 'postgres' ? 1000 : 2000),
        );
        timer.unref();
        state = 'running';
      },
      stop: async () => {
        if (timer !== undefined) clearInterval(timer);
        state = 'stopped';
      },
      status: () => ({
        state,
        problems: failing ? ['the job store watch cannot read the store: changes made by the CLI wait'] : [],
      }),
    };
  }

  /** One inference pool per configured model that is present; a missing model is logged, not fatal. */
  private async startModels(): Promise<void> {
    const { config, logger } = this;
    const missing = new Map(modelDirectoryProblems(config).map((p) => [p.model, p]));
    const installed = Object.entries(config.models).filter(
      ([name, dir]) => !missing.has(name) && existsSync(path.join(dir, MANIFEST_FILE)),
    );
    const manifests = new Map(installed.map(([name, dir]) => [name, readManifest(dir)]));
    // Before any worker starts: a target the models lack would otherwise fail every image at run time.
    checkExplainTarget(
      config.explain.target,
      [...manifests].map(([name, m]) => [name, m.classes] as const),
    );
    for (const [name, dir] of Object.entries(config.models)) {
      const problem = missing.get(name);
      const manifest = manifests.get(name);
      if (problem !== undefined || manifest === undefined) {
        // Loud: studies are still acknowledged, and the ones routed here are never processed until this is fixed.
        logger.error(
          'model directory missing: studies routed to this model are stored but NOT processed until it is installed and the daemon restarted',
          {
            event: 'ANALYSIS-5006',
            model: name,
            dir,
            why: problem?.problem ?? `no ${MANIFEST_FILE}`,
          },
        );
        continue;
      }
      const pool = await InferencePool.start({
        modelDir: dir,
        engine: config.inference.engine,
        backend: config.inference.backend,
        onnxruntime: config.inference.onnxruntime,
        workers: config.inference.workers,
        cores: availableParallelism(),
        logger,
        allowSoftwareGpu: config.inference.allowSoftwareGpu,
        lrp: lrpSettings(config.explain),
      });
      this.models.set(name, { pool, manifest });
    }
  }

  /** Every started stage's status, in start order (for /healthz). */
  stageStatuses(): Array<{ name: string; status: StageStatus }> {
    return this.stages.map((stage) => ({ name: stage.name, status: stage.status() }));
  }

  /**
   * Stops every stage in reverse start order with one deadline, now + dicom.shutdownGraceSeconds: the listener
   * lets C-STOREs finish, the pipeline lets deliveries and images finish, until then; at the deadline a delivery
   * in flight is aborted (A-ABORT or MLLP close) and stays pending, sent again after restart.
   */
  async stop(): Promise<void> {
    const deadline = Date.now() + this.config.dicom.shutdownGraceSeconds * 1000;
    const started = Date.now();
    await this.watch?.stop(deadline);
    this.watch = undefined;
    for (const stage of this.stages.reverse()) {
      try {
        await stage.stop(deadline);
      } catch (error) {
        this.logger.error('a stage did not stop cleanly', {
          event: 'GATEWAY-7006',
          stage: stage.name,
          error: describeError(error),
        });
      }
    }
    this.stages = [];
    this.scp = undefined;
    this.assembler = undefined;
    this.pipeline = undefined;
    this.admin = undefined;
    this.tasks = undefined;
    this.logger.info('all stages stopped', {
      event: 'GATEWAY-7007',
      ms: Date.now() - started,
      overDeadlineMs: Math.max(0, Date.now() - deadline),
    });
  }

  private async startStage(stage: Stage): Promise<void> {
    // Listed before it starts: a stage that fails half-way is still stopped by stop().
    this.stages.push(stage);
    await stage.start();
  }

  /** The job store: opened first, closed last, once no job pass or delivery is left running. */
  private storeStage(store: JobStore): Stage {
    let state: StageStatus['state'] = 'running';
    return {
      name: 'store',
      start: async () => undefined,
      stop: async () => {
        state = 'stopping';
        await this.pipeline?.drained();
        await Promise.allSettled([...this.draining]);
        store.close();
        state = 'stopped';
      },
      status: () => {
        if (state !== 'running') return { state, problems: [] };
        try {
          store.countStudies('receiving');
          return { state, problems: [] };
        } catch {
          return { state: 'degraded', problems: ['the job store does not answer'] };
        }
      },
    };
  }

  /** The inference pools, one per model: in-flight images may finish until the deadline, then workers end. */
  private analysisStage(): Stage {
    let state: StageStatus['state'] = 'running';
    return {
      name: 'analysis',
      start: async () => undefined,
      stop: async (deadline) => {
        state = 'stopping';
        await Promise.all([...this.models.values()].map((m) => m.pool.stop(deadline)));
        this.models.clear();
        state = 'stopped';
      },
      status: () => {
        if (state !== 'running') return { state, problems: [] };
        const live = [...this.models.values()].reduce((n, m) => n + m.pool.status().live, 0);
        return { state, problems: [], figures: { models: this.models.size, liveWorkers: live } };
      },
    };
  }

  /**
   * The destinations (PACS and RIS) as one stage: stop() runs after the pipeline's, which has already aborted
   * the deliveries still in flight at the deadline; it closes connections and answers any straggler `retry`.
   */
  private exportStage(destinations: Destinations): Stage {
    let state: StageStatus['state'] = 'starting';
    return {
      name: 'export',
      start: async () => {
        await startAll(destinations);
        this.targets = deliveryTargets(destinations);
        state = 'running';
      },
      stop: async () => {
        state = 'stopping';
        await Promise.all([...this.targets.values()].map((t) => t.stop?.()));
        this.targets.clear();
        state = 'stopped';
      },
      status: () => ({ state, problems: [], figures: { destinations: this.targets.size } }),
    };
  }
}

function startAll(destinations: Destinations): Promise<unknown> {
  return Promise.all([...destinations.pacs.values(), ...destinations.ris.values()].map((d) => d.start()));
}

function stopAll(destinations: Destinations): Promise<unknown> {
  return Promise.allSettled([...destinations.pacs.values(), ...destinations.ris.values()].map((d) => d.stop()));
}

type DestinationsConfig = GatewayConfig['destinations'];

/**
 * What a reload changes among the destinations, by name: `added` holds the new and the changed ones (to
 * create), `retired` the changed and removed ones (to drain). An unchanged one keeps its running instance.
 */
export function destinationChanges(
  before: DestinationsConfig,
  after: DestinationsConfig,
): { added: DestinationsConfig; retired: string[]; addedNames: string[]; removedNames: string[] } {
  const key = (kind: string, d: unknown) => `${kind}:${JSON.stringify(d)}`;
  const old = new Map<string, string>();
  for (const d of before.pacs) old.set(d.name, key('pacs', d));
  for (const d of before.ris) old.set(d.name, key('ris', d));
  const fresh = new Map<string, string>();
  for (const d of after.pacs) fresh.set(d.name, key('pacs', d));
  for (const d of after.ris) fresh.set(d.name, key('ris', d));
  const changedOrNew = (name: string) => old.get(name) !== fresh.get(name);
  const added = {
    pacs: after.pacs.filter((d) => changedOrNew(d.name)),
    ris: after.ris.filter((d) => changedOrNew(d.name)),
  };
  const retired = [...old.keys()].filter((name) => old.get(name) !== fresh.get(name));
  return {
    added,
    retired,
    addedNames: [...added.pacs, ...added.ris].map((d) => d.name),
    removedNames: [...old.keys()].filter((name) => !fresh.has(name)),
  };
}

/**
 * A model's health figures. `wantedWorkers` comes from the pool's status() where the pool has one (the
 * self-healing pool reports wanted and live workers); until then live = the pool's size and nothing is wanted.
 */
function modelStatus(name: string, runtime: ModelRuntime | undefined): ModelStatus {
  if (runtime === undefined) return { name, loaded: false, backend: undefined, workers: 0 };
  const pool = runtime.pool.status();
  // A pool with no live worker serves nothing: 'loaded' but degraded (modelsHealth says why).
  return {
    name,
    loaded: true,
    backend: runtime.pool.backend,
    workers: pool.live,
    wantedWorkers: pool.wanted,
    restartingWorkers: pool.restarting,
    workerCrashes: pool.crashes,
  };
}
