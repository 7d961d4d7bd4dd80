import { randomUUID } from 'node:crypto';
import net from 'node:net';
import type { DicomConfig } from '../config/schema.js';
import { IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME } from '../dicom/implementation.js';
import { describeError } from '../errors.js';
import type { Logger } from '../logging/logger.js';
import type { Stage, StageStatus } from '../logging/lifecycle.js';
import { Admission } from './admission.js';
import { decideAssociation, normaliseAddress } from './association-policy.js';
import {
  ContextResult,
  encodeAssociateAc,
  encodeAssociateRj,
  type AcceptedContext,
  type AssociateRequest,
} from './association-pdus.js';
import type { InstanceSink } from '../store/instance-sink.js';
import { negotiateContext, type ContextPolicy } from './presentation-contexts.js';
import {
  ScpConnection,
  type AssociationAnswer,
  type NegotiatedContext,
  type ScpConnectionOwner,
} from './scp-connection.js';
import type { TimerScheduler } from './upper-layer.js';

export interface StorageScpOptions {
  config: DicomConfig;
  sink: InstanceSink;
  logger: Logger;
  /** The ARTIM and other timers; tests inject their own. */
  schedule?: TimerScheduler;
  /** The clock the shutdown deadline is read by (epoch ms); tests inject their own. */
  now?: () => number;
}

const realTimers: TimerScheduler = (ms, fire) => {
  const timer = setTimeout(fire, ms);
  timer.unref();
  return () => clearTimeout(timer);
};

/**
 * The Storage SCP: C-ECHO and C-STORE for the configured image SOP classes. It owns the listening socket (bound
 * to the configured host) and, per connection, the DICOM upper layer (upper-layer.ts) and DIMSE service
 * (scp-connection.ts); every dataset goes to an InstanceSink, and Success is answered only when the sink says
 * the instance is durable. Admission (admission.ts) decides which sockets to keep when there are too many.
 */
export class StorageScp implements ScpConnectionOwner, Stage {
  readonly name = 'dicom-listener';
  private server: net.Server | undefined;
  private state: 'new' | 'running' | 'stopping' | 'stopped' = 'new';
  private readonly connections = new Map<string, ScpConnection>();
  private stopping = false;
  private readonly contextPolicy: ContextPolicy;
  private readonly admission: Admission;
  private readonly schedule: TimerScheduler;

  constructor(private readonly options: StorageScpOptions) {
    const { config } = options;
    this.contextPolicy = {
      sopClasses: new Set(config.acceptedSopClasses),
      transferSyntaxes: config.transferSyntaxes,
    };
    this.admission = new Admission({
      perSource: config.maxConnectionsPerSource,
      // What used to be the cap on all sockets now caps only those that are not associations.
      unassociated: config.maxAssociations * 2 + 4,
    });
    this.schedule = options.schedule ?? realTimers;
  }

  get openAssociations(): number {
    let n = 0;
    for (const c of this.connections.values()) if (c.accepted && c.state !== 'Sta13' && c.state !== 'Sta1') n += 1;
    return n;
  }

  async start(): Promise<{ host: string; port: number }> {
    const { config, logger } = this.options;
    const server = net.createServer((socket) => this.onConnection(socket));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: config.host, port: config.port }, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', (error) =>
      logger.error('DICOM listener error', { event: 'DIMSE-1011', error: describeError(error) }),
    );
    const address = server.address() as net.AddressInfo;
    this.state = 'running';
    return { host: address.address, port: address.port };
  }

  status(): StageStatus {
    const state = this.state === 'new' ? 'starting' : this.state;
    return {
      state,
      problems:
        state === 'running' || state === 'starting'
          ? []
          : ['the DICOM listener is not accepting associations (the gateway is stopping)'],
      figures: { connections: this.connections.size, associations: this.openAssociations },
    };
  }

  /**
   * Stops accepting, lets C-STOREs in progress finish until `deadline` (epoch ms), then aborts every association
   * and closes every connection. A transfer cut off by the deadline was never acknowledged, and its partial file
   * is removed.
   */
  async stop(deadline: number): Promise<void> {
    if (this.state === 'stopped') return;
    this.stopping = true;
    this.state = 'stopping';
    const now = this.options.now ?? Date.now;
    const server = this.server;
    this.server = undefined;
    const closed = server ? new Promise<void>((resolve) => server.close(() => resolve())) : Promise.resolve();
    const hadGrace = deadline > now();
    while (now() < deadline && [...this.connections.values()].some((c) => c.busy)) {
      await new Promise((resolve) => setTimeout(resolve, Math.min(50, Math.max(1, deadline - now()))));
    }
    const all = [...this.connections.values()];
    for (const connection of all) connection.shutdown();
    // The A-ABORTs are flushed; whoever has not closed a moment later is cut off.
    await new Promise((resolve) => setTimeout(resolve, hadGrace ? 200 : 0));
    for (const connection of all) connection.destroy();
    await Promise.all(all.map((c) => c.settled()));
    await closed;
    this.state = 'stopped';
  }

  private onConnection(socket: net.Socket): void {
    const { config, logger } = this.options;
    const id = randomUUID().slice(0, 8);
    const peerAddress = normaliseAddress(socket.remoteAddress ?? 'unknown');
    // An error before the connection object exists must not become an uncaught exception.
    socket.on('error', () => undefined);
    const decision = this.admission.admit(id, peerAddress);
    if (!decision.admitted) {
      logger.warn('connection refused: too many from one address', {
        event: 'DIMSE-1008',
        associationId: id,
        peer: peerAddress,
        why: decision.reason,
      });
      socket.destroy();
      return;
    }
    for (const victim of decision.evict)
      this.connections.get(victim.id)?.evict(`room for a new connection from ${peerAddress}`);
    try {
      const connection = new ScpConnection({
        id,
        socket,
        peerAddress,
        owner: this,
        logger,
        maxPduLength: config.maxPduLength,
        artimMs: config.associationRequestTimeoutSeconds * 1000,
        idleTimeoutMs: config.idleTimeoutSeconds * 1000,
        schedule: this.schedule,
      });
      this.connections.set(id, connection);
      logger.debug('connection opened', { associationId: id, peer: peerAddress });
    } catch (error) {
      this.admission.remove(id);
      logger.error('could not set up a connection; closing it', {
        event: 'DIMSE-1009',
        associationId: id,
        peer: peerAddress,
        error: describeError(error),
      });
      socket.destroy();
    }
  }

  /** @internal ScpConnectionOwner */
  associate(connection: ScpConnection, request: AssociateRequest): AssociationAnswer {
    const { config, logger } = this.options;
    const decision = this.stopping
      ? {
          accept: false as const,
          result: 2 as const,
          source: 3 as const,
          reason: 1,
          explanation: 'the gateway is shutting down; the sender should retry later',
        }
      : decideAssociation(
          { calledAe: request.calledAe, callingAe: request.callingAe, peerAddress: connection.peerAddress },
          { aeTitle: config.aeTitle, callers: config.callers, maxAssociations: config.maxAssociations },
          this.openAssociations,
        );
    const ids = {
      associationId: connection.id,
      callingAe: request.callingAe,
      calledAe: request.calledAe,
      peer: connection.peerAddress,
    };
    if (!decision.accept) {
      logger.warn('association rejected', {
        event: 'DIMSE-1003',
        ...ids,
        result: decision.result,
        source: decision.source,
        reason: decision.reason,
        why: decision.explanation,
      });
      return { accept: false, rj: encodeAssociateRj(decision.result, decision.source, decision.reason) };
    }
    const answers: AcceptedContext[] = [];
    const negotiated = new Map<number, NegotiatedContext>();
    const accepted: string[] = [];
    for (const context of request.contexts) {
      const firstProposed = context.transferSyntaxes[0] ?? '1.2.840.10008.1.2';
      if (context.abstractSyntax === undefined || context.transferSyntaxes.length === 0) {
        answers.push({ id: context.id, result: ContextResult.ProviderRejection, transferSyntax: firstProposed });
        continue;
      }
      const answer = negotiateContext(context.abstractSyntax, context.transferSyntaxes, this.contextPolicy);
      if (answer.result === 'accept') {
        answers.push({ id: context.id, result: ContextResult.Acceptance, transferSyntax: answer.transferSyntax });
        negotiated.set(context.id, { abstractSyntax: context.abstractSyntax, transferSyntax: answer.transferSyntax });
        accepted.push(`${context.abstractSyntax}@${answer.transferSyntax}`);
      } else if (answer.result === 'abstract-syntax-not-supported') {
        answers.push({
          id: context.id,
          result: ContextResult.AbstractSyntaxNotSupported,
          transferSyntax: firstProposed,
        });
      } else {
        answers.push({
          id: context.id,
          result: ContextResult.TransferSyntaxesNotSupported,
          transferSyntax: firstProposed,
        });
      }
    }
    const ac = encodeAssociateAc({
      calledAe: request.calledAe,
      callingAe: request.callingAe,
      contexts: answers,
      maxPduLength: config.maxPduLength,
      implementationClassUid: IMPLEMENTATION_CLASS_UID,
      implementationVersionName: IMPLEMENTATION_VERSION_NAME,
    });
    logger.info('association accepted', { event: 'DIMSE-1001', ...ids, contexts: accepted.length, accepted });
    return { accept: true, ac, contexts: negotiated };
  }

  /** @internal ScpConnectionOwner */
  beginStore(
    connection: ScpConnection,
    command: { sopClassUid: string; sopInstanceUid: string; transferSyntaxUid: string },
  ) {
    return this.options.sink.begin({
      ...command,
      callingAe: connection.callingAe,
      calledAe: connection.calledAe,
      sourceIp: connection.peerAddress,
      associationId: connection.id,
    });
  }

  /** @internal ScpConnectionOwner */
  phaseChanged(connection: ScpConnection, phase: 'associated' | 'closing'): void {
    this.admission.setPhase(connection.id, phase);
  }

  /** @internal ScpConnectionOwner */
  finished(connection: ScpConnection): void {
    this.connections.delete(connection.id);
    this.admission.remove(connection.id);
    if (connection.accepted) {
      this.options.logger.info('association closed', {
        event: 'DIMSE-1002',
        associationId: connection.id,
        callingAe: connection.callingAe,
      });
    }
  }
}
