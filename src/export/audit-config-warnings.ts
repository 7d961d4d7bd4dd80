/**
 * Safe-default warnings for `audit.syslog` (issue 17): sentences for the start-up log and for `check-config`.
 * Audit messages name studies, AE titles and addresses: they should not cross a network in clear text, and the
 * gateway's private key must not be readable by other users.
 */
import { statSync } from 'node:fs';
import type { AuditConfig } from '../config/schema.js';

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/** The warnings the audit section deserves; empty when it is safe (or not configured). */
export function auditConfigWarnings(audit: AuditConfig): string[] {
  const syslog = audit.syslog;
  if (syslog === undefined) return [];
  const warnings: string[] = [];
  if (syslog.transport !== 'tls' && !isLoopback(syslog.host)) {
    warnings.push(
      `audit.syslog sends audit messages in clear text (transport: ${syslog.transport}) to ${syslog.host}, which is not this machine: use transport: tls (RFC 5425)`,
    );
  }
  if (syslog.keyFile !== undefined) {
    let mode: number | undefined;
    try {
      mode = statSync(syslog.keyFile).mode;
    } catch {
      // A missing key file fails the first connection with AUDIT_SYSLOG_FILES, which names it.
    }
    if (mode !== undefined && (mode & 0o077) !== 0) {
      warnings.push(
        `audit.syslog.keyFile ${syslog.keyFile} is readable by group or others (mode ${(mode & 0o777).toString(8).padStart(4, '0')}): chmod 600 it, owned by the gateway user`,
      );
    }
  }
  return warnings;
}
