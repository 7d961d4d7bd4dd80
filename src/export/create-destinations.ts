import type { GatewayConfig } from '../config/schema.js';
import type { CommitmentRegistry } from '../dimse/commitment-registry.js';
import type { Logger } from '../logging/logger.js';
import type { AuditRecorder } from '../store/audit-trail.js';
import type { Destination, DicomObject, Hl7Message } from './destination.js';
import { PacsDicomDestination } from './pacs-dicom-destination.js';
import { PacsDicomwebDestination } from './pacs-dicomweb-destination.js';
import { PacsFolderDestination } from './pacs-folder-destination.js';
import { RisFolderDestination } from './ris-folder-destination.js';
import { RisMllpDestination } from './ris-mllp-destination.js';

export interface Destinations {
  /** By name, as rules refer to them. */
  pacs: ReadonlyMap<string, Destination<DicomObject>>;
  ris: ReadonlyMap<string, Destination<Hl7Message>>;
}

/**
 * Builds every configured destination. `ourAeTitle` (dicom.aeTitle) is the calling AE towards a PACS that
 * names no callingAeTitle of its own. Folder paths arrive resolved by the config loader. Nothing is opened
 * here: call start() on each (and stop() at shutdown).
 */
export function createDestinations(
  config: GatewayConfig['destinations'],
  ourAeTitle: string,
  logger: Logger,
  /** Where destinations record their audit events (pacs.sent, ris.sent, tls.failed); none when left out. */
  audit?: AuditRecorder,
  /** Where storage commitment reports arrive (shared with the Storage SCP); needed by storageCommitment.enabled. */
  commitments?: CommitmentRegistry,
): Destinations {
  const pacs = new Map<string, Destination<DicomObject>>();
  for (const d of config.pacs) {
    if (d.type === 'dicom') {
      pacs.set(
        d.name,
        new PacsDicomDestination({
          name: d.name,
          peer: {
            host: d.host,
            port: d.port,
            calledAeTitle: d.aeTitle,
            callingAeTitle: d.callingAeTitle ?? ourAeTitle,
            connectTimeoutMs: d.connectTimeoutSeconds * 1000,
            responseTimeoutMs: d.responseTimeoutSeconds * 1000,
            ...(d.tls === undefined ? {} : { tls: d.tls }),
          },
          logger,
          ...(audit === undefined ? {} : { audit }),
          ...(d.storageCommitment.enabled && commitments !== undefined
            ? { commitment: { registry: commitments, timeoutMs: d.storageCommitment.timeoutSeconds * 1000 } }
            : {}),
        }),
      );
    } else if (d.type === 'dicomweb') {
      pacs.set(
        d.name,
        new PacsDicomwebDestination({
          name: d.name,
          baseUrl: d.baseUrl,
          auth: d.auth,
          ...(d.tls?.caFile === undefined ? {} : { caFile: d.tls.caFile }),
          timeoutMs: d.timeoutSeconds * 1000,
          logger,
          ...(audit === undefined ? {} : { audit }),
        }),
      );
    } else {
      pacs.set(d.name, new PacsFolderDestination({ name: d.name, path: d.path, logger }));
    }
  }
  const ris = new Map<string, Destination<Hl7Message>>();
  for (const d of config.ris) {
    if (d.type === 'mllp') {
      ris.set(
        d.name,
        new RisMllpDestination({
          name: d.name,
          // Original acknowledgement mode: only AA is success (the guide's rule; CA would need enhanced mode).
          sender: {
            host: d.host,
            port: d.port,
            connectTimeoutMs: d.connectTimeoutSeconds * 1000,
            responseTimeoutMs: d.ackTimeoutSeconds * 1000,
            ackMode: 'original',
          },
          ...(d.tls !== undefined ? { tls: d.tls } : {}),
          ...(audit !== undefined ? { audit } : {}),
          logger,
        }),
      );
    } else {
      ris.set(d.name, new RisFolderDestination({ name: d.name, path: d.path, logger }));
    }
  }
  return { pacs, ris };
}
