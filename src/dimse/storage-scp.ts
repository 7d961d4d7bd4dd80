import { randomUUID } from 'node:crypto';
import net from 'node:net';
import tls from 'node:tls';
import type { DicomConfig } from '../config/schema.js';
import { IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME } from '../dicom/implementation.js';
import { describeError } from '../errors.js';
import type { Logger } from '../logging/logger.js';
import type { Stage, StageStatus } from '../logging/lifecycle.js';
import { Admission } from './admission.js';
import { decideAssociation, normaliseAddress, type Rejection } from './association-policy.js';
import {
  ContextResult,
  encodeAssociateAc,
  encodeAssociateRj,
  type AcceptedContext,
  type AssociateRequest,
  type RoleSelection,
} from './association-pdus.js';
import { RepeatLimiter, type AuditRecord, type AuditRecorder } from '../store/audit-trail.js';
import type { InstanceSink } from '../store/instance-sink.js';
import { boundAeTitle, serverOptions, serverSecureContext, subjectText } from './dicom-tls.js';
import { negotiateContext, type ContextPolicy } from './presentation-contexts.js';
import {
  ScpConnection,
  type AssociationAnswer,
  type NegotiatedContext,
  type PeerTls,
  type ScpConnectionOwner,
} from './scp-connection.js';
import type { TimerScheduler } from './upper-layer.js';
import type { CommitmentRegistry } from './commitment-registry.js';
import { receiveCommitmentReport, type ReportAnswer } from './commitment-report.js';
import type { Command } from './dimse-messages.js';
import { COMMITMENT_TRANSFER_SYNTAXES, STORAGE_COMMITMENT_PUSH_MODEL } from './storage-commitment.js';

export interface StorageScpOptions {
  config: DicomConfig;
  sink: InstanceSink;
  logger: Logger;
  /** The ARTIM and other timers; tests inject their own. */
  schedule?: TimerScheduler;
  /** The clock the shutdown deadline is read by (epoch ms); tests inject their own. */
  now?: () => number;
  /** Where association, study and security events are recorded (the job store's audit trail). */
  audit?: AuditRecorder;
  /**
   * Storage commitment results (N-EVENT-REPORT) that PACSs send on associations they open to us go here; with it
   * the SCP accepts the Storage Commitment Push Model context (the PACS in the SCP role), without it refuses it.
   */
  commitments?: CommitmentRegistry;
}

/** Where the listeners are bound; `port` is the plain one's, or the TLS one's when the plain listener is off. */
export interface ScpAddress {
  host: string;
  port: number;
  /** The TLS listener's port, when dicom.tls is configured. */
  tlsPort?: number;
}

/** What one association received of one study, reported as one study.received audit event when it ends. */
interface StudyTally {
  sopClassUids: Set<string>;
  instances: number;
}

const PERMANENT = 1;
const SERVICE_USER = 1;
const CALLING_AE_NOT_RECOGNIZED = 3;

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
  private tlsServer: tls.Server | undefined;
  private readonly studies = new Map<string, Map<string, StudyTally>>();
  private readonly tcpPeers = new WeakMap<net.Socket, string>();
  private readonly tlsRepeats = new RepeatLimiter();
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

  async start(): Promise<ScpAddress> {
    const { config, logger } = this.options;
    let plainPort: number | undefined;
    let host = config.host;
    if (config.plain) {
      const server = net.createServer((socket) => this.onConnection(socket, undefined));
      this.server = server;
      const address = await this.listen(server, config.port);
      host = address.address;
      plainPort = address.port;
    }
    let tlsPort: number | undefined;
    if (config.tls !== undefined) {
      const server = tls.createServer(
        // The handshake is bounded like an association request is (ARTIM): a socket that never finishes it goes.
        { ...serverOptions(config.tls), handshakeTimeout: config.associationRequestTimeoutSeconds * 1000 },
        (socket) => this.onSecureConnection(socket),
      );
      // A handshake refused for its certificate has lost its socket's address by the time tlsClientError fires:
      // read it when TCP connects, keyed by the TCP socket the TLS socket wraps.
      server.on('connection', (raw: net.Socket) => this.tcpPeers.set(raw, raw.remoteAddress ?? 'unknown'));
      server.on('tlsClientError', (error, socket) => this.onTlsFailure(error, socket));
      this.tlsServer = server;
      try {
        const address = await this.listen(server, config.tls.port);
        host = address.address;
        tlsPort = address.port;
      } catch (error) {
        this.server?.close();
        throw error;
      }
    }
    this.state = 'running';
    logger.debug('DICOM listeners bound', { host, plainPort, tlsPort });
    return { host, port: plainPort ?? tlsPort ?? 0, ...(tlsPort === undefined ? {} : { tlsPort }) };
  }

  /**
   * Re-reads the TLS certificate, key and CA files (SIGHUP) into the listener's secure context. Associations in
   * progress keep the context they were made with; new handshakes use the new one. A file that cannot be read or
   * a key that does not fit throws (a GatewayError naming the file) and the old context stays.
   */
  reloadTls(): void {
    const tlsConfig = this.options.config.tls;
    const server = this.tlsServer;
    if (tlsConfig === undefined || server === undefined) return;
    try {
      server.setSecureContext(serverSecureContext(tlsConfig));
    } catch (error) {
      this.options.logger.error('DICOM TLS files not reloaded; the listener keeps its current certificate', {
        event: 'DIMSE-1403',
        error: describeError(error),
      });
      throw error;
    }
    this.options.logger.info('DICOM TLS certificate, key and CA reloaded', {
      event: 'DIMSE-1402',
      certFile: tlsConfig.certFile,
    });
  }

  private async listen(server: net.Server, port: number): Promise<net.AddressInfo> {
    const { config, logger } = this.options;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: config.host, port }, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', (error) =>
      logger.error('DICOM listener error', { event: 'DIMSE-1011', error: describeError(error) }),
    );
    return server.address() as net.AddressInfo;
  }

  /** Mutual TLS: a client whose certificate did not verify against caFile (or that sent none) goes now. */
  private onSecureConnection(socket: tls.TLSSocket): void {
    if (this.options.config.tls?.requireClientCertificate === true && !socket.authorized) {
      // Without a certificate Node still reports an issuer error: tell the two apart for the admin.
      const presented = Object.keys(socket.getPeerCertificate()).length > 0;
      const why = presented
        ? `the client certificate was refused: ${String(socket.authorizationError as unknown)}`
        : 'no client certificate was presented';
      this.onTlsFailure(new Error(why), socket);
      socket.destroy();
      return;
    }
    this.onConnection(socket, this.peerTls(socket));
  }

  private peerTls(socket: tls.TLSSocket): PeerTls {
    const certificate = socket.getPeerCertificate();
    const hasCertificate = certificate !== undefined && Object.keys(certificate).length > 0;
    const cn = hasCertificate ? certificate.subject?.CN : undefined;
    return {
      subject: hasCertificate ? subjectText(certificate.subject) : undefined,
      commonName: Array.isArray(cn) ? cn[0] : cn,
      protocol: socket.getProtocol() ?? 'unknown',
    };
  }

  /** A TLS handshake failed (untrusted or missing client certificate, no common cipher, plain DICOM on the TLS port). */
  private onTlsFailure(error: Error, socket: tls.TLSSocket): void {
    // `_parent` is the TCP socket a server-side TLS socket wraps (Node keeps it there; it is not in the typings).
    const raw = (socket as tls.TLSSocket & { _parent?: net.Socket })._parent;
    const address = normaliseAddress(socket.remoteAddress ?? (raw && this.tcpPeers.get(raw)) ?? 'unknown');
    const reason = describeError(error);
    // One log line and audit row per address, reason and minute: a scanner or a retrying modality must not flood
    // them.
    const leftOut = this.tlsRepeats.admit(`${address} ${reason}`, (this.options.now ?? Date.now)());
    if (leftOut === undefined) return;
    const repeats =
      leftOut > 0 ? ` (${leftOut} more alike from this address in the minute before, not recorded one by one)` : '';
    this.options.logger.warn('DICOM TLS handshake failed', {
      event: 'DIMSE-1401',
      peer: address,
      why: reason,
      ...(leftOut > 0 ? { leftOutBefore: leftOut } : {}),
    });
    this.audit({
      category: 'security',
      action: 'tls.failed',
      user: null,
      role: null,
      address,
      target: `called ${this.options.config.aeTitle}`,
      outcome: 'failure',
      after: { listener: 'dicom-tls', address, ...(leftOut > 0 ? { leftOutBefore: leftOut } : {}) },
      detail: `${reason}${repeats}`,
    });
  }

  /** Records an audit event; the trail failing never fails DICOM (it is logged, and the association goes on). */
  private audit(entry: AuditRecord): void {
    const audit = this.options.audit;
    if (audit === undefined) return;
    try {
      audit.record(entry, (this.options.now ?? Date.now)());
    } catch (error) {
      this.options.logger.error('could not record an audit event', {
        event: 'DIMSE-1404',
        action: entry.action,
        error: describeError(error),
      });
    }
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
    const servers = [this.server, this.tlsServer].filter((x): x is net.Server => x !== undefined);
    this.server = undefined;
    this.tlsServer = undefined;
    const closed = Promise.all(servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
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

  private onConnection(socket: net.Socket, peerTls: PeerTls | undefined): void {
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
        ...(peerTls === undefined ? {} : { tls: peerTls }),
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
      : (this.certificateBinding(connection, request.callingAe) ??
        decideAssociation(
          { calledAe: request.calledAe, callingAe: request.callingAe, peerAddress: connection.peerAddress },
          { aeTitle: config.aeTitle, callers: config.callers, maxAssociations: config.maxAssociations },
          this.openAssociations,
        ));
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
      this.auditAssociation(connection, request, 'failure', decision.explanation);
      // A caller the policy does not know (its AE, its address, its certificate) is a security event as well.
      if (decision.reason === CALLING_AE_NOT_RECOGNIZED && decision.source === SERVICE_USER)
        this.audit({
          category: 'security',
          action: 'caller.rejected',
          user: request.callingAe,
          role: null,
          address: connection.peerAddress,
          target: `called ${request.calledAe}`,
          outcome: 'failure',
          after: this.associationFacts(connection, request),
          detail: decision.explanation,
        });
      return { accept: false, rj: encodeAssociateRj(decision.result, decision.source, decision.reason) };
    }
    const answers: AcceptedContext[] = [];
    const negotiated = new Map<number, NegotiatedContext>();
    const accepted: string[] = [];
    const roleAnswers: RoleSelection[] = [];
    for (const context of request.contexts) {
      const firstProposed = context.transferSyntaxes[0] ?? '1.2.840.10008.1.2';
      if (context.abstractSyntax === undefined || context.transferSyntaxes.length === 0) {
        answers.push({ id: context.id, result: ContextResult.ProviderRejection, transferSyntax: firstProposed });
        continue;
      }
      if (context.abstractSyntax === STORAGE_COMMITMENT_PUSH_MODEL && this.options.commitments !== undefined) {
        const answer = this.commitmentContext(context.transferSyntaxes, request.roleSelections, roleAnswers);
        answers.push({ id: context.id, result: answer.result, transferSyntax: answer.transferSyntax ?? firstProposed });
        if (answer.transferSyntax !== undefined && answer.result === ContextResult.Acceptance) {
          negotiated.set(context.id, { abstractSyntax: context.abstractSyntax, transferSyntax: answer.transferSyntax });
          accepted.push(`${context.abstractSyntax}@${answer.transferSyntax}`);
        }
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
      roleSelections: roleAnswers,
    });
    logger.info('association accepted', {
      event: 'DIMSE-1001',
      ...ids,
      contexts: accepted.length,
      accepted,
      ...(connection.tls === undefined ? {} : { tls: connection.tls.protocol, subject: connection.tls.subject }),
    });
    this.auditAssociation(connection, request, 'success', null);
    return { accept: true, ac, contexts: negotiated };
  }

  /**
   * The Storage Commitment Push Model context a PACS proposes to report a result (PS3.4 J.3.3, PS3.7 D.3.3.4): the
   * PACS is the SCP of the SOP class and we its SCU, so with a role selection it must propose itself as SCP, and we
   * answer SCP role yes, SCU role no (we perform no storage commitment for others). Without a role selection the
   * context is accepted too: many PACSs send their report that way, and the default roles still let the report in.
   */
  private commitmentContext(
    proposed: readonly string[],
    selections: readonly RoleSelection[],
    roleAnswers: RoleSelection[],
  ): { result: number; transferSyntax: string | undefined } {
    const transferSyntax = proposed.find((ts) => COMMITMENT_TRANSFER_SYNTAXES.includes(ts));
    if (transferSyntax === undefined) return { result: ContextResult.TransferSyntaxesNotSupported, transferSyntax };
    const selection = selections.find((r) => r.sopClassUid === STORAGE_COMMITMENT_PUSH_MODEL);
    if (selection !== undefined) {
      if (!roleAnswers.some((r) => r.sopClassUid === STORAGE_COMMITMENT_PUSH_MODEL))
        roleAnswers.push({ sopClassUid: STORAGE_COMMITMENT_PUSH_MODEL, scuRole: false, scpRole: selection.scpRole });
      // Only as SCU would the peer ask us to commit: nothing on this context could then be served.
      if (!selection.scpRole) return { result: ContextResult.UserRejection, transferSyntax };
    }
    return { result: ContextResult.Acceptance, transferSyntax };
  }

  /** @internal ScpConnectionOwner */
  commitmentReport(
    connection: ScpConnection,
    report: { command: Command; dataset: Buffer | undefined; transferSyntaxUid: string },
  ): ReportAnswer {
    const registry = this.options.commitments;
    if (registry === undefined)
      return {
        status: 0x0211,
        affectedSopClassUid: STORAGE_COMMITMENT_PUSH_MODEL,
        affectedSopInstanceUid: report.command.affectedSopInstanceUid ?? '',
        extra: [],
      };
    return receiveCommitmentReport(
      report.command,
      report.dataset,
      report.transferSyntaxUid,
      registry,
      {
        via: 'new-association',
        callingAe: connection.callingAe,
        peer: connection.peerAddress,
        associationId: connection.id,
      },
      this.options.logger,
    );
  }

  /**
   * With dicom.tls.allowedSubjects, a TLS association's calling AE must be the one bound to its client
   * certificate's subject (a stolen AE title alone is not enough); a rejection, or undefined to go on.
   */
  private certificateBinding(
    connection: ScpConnection,
    callingAe: string,
  ): ({ accept: false } & Rejection) | undefined {
    const allowed = this.options.config.tls?.allowedSubjects;
    const peer = connection.tls;
    if (allowed === undefined || peer === undefined) return undefined;
    const calling = callingAe.trim();
    const bound = boundAeTitle(allowed, peer.subject ?? '', peer.commonName);
    if (bound === calling) return undefined;
    return {
      accept: false,
      result: PERMANENT,
      source: SERVICE_USER,
      reason: CALLING_AE_NOT_RECOGNIZED,
      explanation:
        bound === undefined
          ? `the client certificate '${peer.subject ?? 'none'}' is not in dicom.tls.allowedSubjects`
          : `calling AE '${calling}' is not the AE bound to the client certificate '${peer.subject ?? ''}' ('${bound}')`,
    };
  }

  private associationFacts(connection: ScpConnection, request: AssociateRequest): Record<string, unknown> {
    return {
      callingAe: request.callingAe,
      calledAe: request.calledAe,
      address: connection.peerAddress,
      tls: connection.tls !== undefined,
      ...(connection.tls?.subject === undefined ? {} : { peerCertificateSubject: connection.tls.subject }),
    };
  }

  private auditAssociation(
    connection: ScpConnection,
    request: AssociateRequest,
    outcome: 'success' | 'failure',
    reason: string | null,
  ): void {
    this.audit({
      category: 'dicom',
      action: outcome === 'success' ? 'association.accepted' : 'association.rejected',
      user: request.callingAe,
      role: null,
      address: connection.peerAddress,
      target: `called ${request.calledAe}`,
      outcome,
      after: this.associationFacts(connection, request),
      detail: reason,
    });
  }

  /** @internal ScpConnectionOwner */
  stored(connection: ScpConnection, sopClassUid: string, studyInstanceUid: string): void {
    let studies = this.studies.get(connection.id);
    if (studies === undefined) {
      studies = new Map();
      this.studies.set(connection.id, studies);
    }
    const tally = studies.get(studyInstanceUid) ?? { sopClassUids: new Set<string>(), instances: 0 };
    tally.sopClassUids.add(sopClassUid);
    tally.instances += 1;
    studies.set(studyInstanceUid, tally);
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
    // One study.received per study per association, once it has ended (released, aborted or cut off).
    const studies = this.studies.get(connection.id);
    this.studies.delete(connection.id);
    for (const [studyInstanceUid, tally] of studies ?? []) {
      this.audit({
        category: 'dicom',
        action: 'study.received',
        user: connection.callingAe,
        role: null,
        address: connection.peerAddress,
        target: `study ${studyInstanceUid}`,
        outcome: 'success',
        after: {
          studyInstanceUid,
          sopClassUids: [...tally.sopClassUids],
          instances: tally.instances,
          callingAe: connection.callingAe,
          calledAe: connection.calledAe,
          address: connection.peerAddress,
          associationId: connection.id,
        },
        detail: null,
      });
    }
    if (connection.accepted) {
      this.options.logger.info('association closed', {
        event: 'DIMSE-1002',
        associationId: connection.id,
        callingAe: connection.callingAe,
      });
    }
  }
}
