import type { DicomConfig, PacsDestination } from '../config/schema.js';
import { keyFileExposure } from './dicom-tls.js';

/** Loopback addresses, where traffic never leaves the machine and TLS protects nothing. */
export function isLoopback(host: string): boolean {
  const h = host.trim().toLowerCase();
  return h === 'localhost' || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h) || h === '::ffff:127.0.0.1';
}

/**
 * The DICOM side's unsafe-but-valid settings, as sentences for check-config and the start-up log (issue 17 item
 * 4): a listener reachable from the network that accepts any caller, plain DICOM toward a PACS on another host, a
 * PACS whose certificate is not verified, and private key files others can read.
 */
export function dicomSecurityWarnings(dicom: DicomConfig, pacs: readonly PacsDestination[]): string[] {
  const warnings: string[] = [];
  if (!isLoopback(dicom.host) && dicom.callers.allowAny)
    warnings.push(
      `dicom.host ${dicom.host} is reachable from the network and dicom.callers.allowAny is true: any modality can send; list the allowed callers`,
    );
  if (!isLoopback(dicom.host) && dicom.plain)
    warnings.push(
      `the plain DICOM listener on ${dicom.host}:${dicom.port} is unencrypted; configure dicom.tls and set dicom.plain: false once the modalities use it`,
    );
  if (dicom.tls !== undefined) {
    const exposed = keyFileExposure(dicom.tls.keyFile);
    if (exposed !== undefined) warnings.push(`dicom.tls: ${exposed}`);
  }
  for (const d of pacs) {
    if (d.type !== 'dicom') continue;
    if (d.tls === undefined && !isLoopback(d.host))
      warnings.push(
        `destination ${d.name}: DICOM to ${d.host}:${d.port} without TLS; patient images cross the network unencrypted (set tls)`,
      );
    if (d.tls !== undefined && !d.tls.verifyServer)
      warnings.push(`destination ${d.name}: tls.verifyServer is false; any server can pose as this PACS`);
    const exposed = d.tls?.keyFile === undefined ? undefined : keyFileExposure(d.tls.keyFile);
    if (exposed !== undefined) warnings.push(`destination ${d.name}: ${exposed}`);
  }
  return warnings;
}
