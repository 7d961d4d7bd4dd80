import { statSync, type Stats } from 'node:fs';

/**
 * Settings that pass the schema but leave patient data or the gateway open: check-config prints them (stderr,
 * exit 0: they are choices a site may make on purpose, e.g. on an isolated modality VLAN) and the daemon logs
 * them at start-up (CONFIG-9005). One warning per finding, with the config key an admin looks at.
 */
export interface SecurityWarning {
  /** Stable, for scripts and tests. */
  code: 'listener-open-to-any' | 'tls-off' | 'tls-unverified' | 'key-file-readable' | 'admin-plain-http';
  /** The config key the warning is about, dotted (destinations.ris.0.tls). */
  key: string;
  message: string;
}

/** A destination as far as these checks care: the config's PACS and RIS entries fit it. */
interface DestinationLike {
  readonly type: string;
  readonly name: string;
  readonly host?: string;
  readonly tls?: unknown;
  /** A DICOMweb destination's URL: TLS is https there, whatever `tls` holds. */
  readonly baseUrl?: string;
}

/**
 * The slice of the config the checks read; GatewayConfig fits it. `dicom.tls` and `audit.syslog` are read when
 * present.
 */
export interface SecurityInput {
  readonly dicom: {
    readonly host: string;
    readonly callers: { readonly allowAny: boolean };
    readonly tls?: unknown;
  };
  readonly destinations: { readonly pacs: readonly DestinationLike[]; readonly ris: readonly DestinationLike[] };
  readonly admin: { readonly enabled: boolean; readonly host: string; readonly tls?: unknown };
  readonly audit?: { readonly syslog?: { readonly host: string; readonly transport: string } | undefined } | undefined;
}

/** Loopback only: 127.0.0.0/8, ::1, localhost. 0.0.0.0 and :: are every interface, the opposite. */
export function isLoopbackHost(host: string): boolean {
  const h = host.trim().toLowerCase();
  return h === 'localhost' || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h) || /^::ffff:127\.\d+\.\d+\.\d+$/.test(h);
}

/** A tls setting that is absent, false, or { enabled: false } means plain TCP. */
function tlsOff(tls: unknown): boolean {
  if (tls === undefined || tls === null || tls === false) return true;
  return typeof tls === 'object' && (tls as { enabled?: unknown }).enabled === false;
}

export function securityWarnings(
  config: SecurityInput,
  stat: (file: string) => Pick<Stats, 'mode'> = statSync,
): SecurityWarning[] {
  const warnings: SecurityWarning[] = [];
  const { dicom } = config;
  if (dicom.callers.allowAny) {
    const listeners = [{ key: 'dicom.host', host: dicom.host }];
    const tlsHost = (dicom.tls as { host?: unknown } | undefined)?.host;
    if (!tlsOff(dicom.tls) && typeof tlsHost === 'string') listeners.push({ key: 'dicom.tls.host', host: tlsHost });
    for (const { key, host } of listeners) {
      if (isLoopbackHost(host)) continue;
      warnings.push({
        code: 'listener-open-to-any',
        key,
        message: `${key} is ${host}, not loopback, and dicom.callers.allowAny is true: any device that reaches this port may store images; list the modalities in dicom.callers.allowed and set allowAny: false`,
      });
    }
  }
  const destinations = [
    ...config.destinations.pacs.map((d, i) => ({ d, key: `destinations.pacs.${i}`, kind: 'PACS' })),
    ...config.destinations.ris.map((d, i) => ({ d, key: `destinations.ris.${i}`, kind: 'RIS' })),
  ];
  for (const { d, key, kind } of destinations) {
    if (d.baseUrl !== undefined) {
      const url = new URL(d.baseUrl);
      const host = url.hostname.replace(/^\[|\]$/g, '');
      if (url.protocol === 'http:' && !isLoopbackHost(host))
        warnings.push({
          code: 'tls-off',
          key: `${key}.baseUrl`,
          message: `${kind} destination '${d.name}' at ${url.host} is not loopback and uses http, not https: results with patient data (and any credentials) cross the network in clear; use an https baseUrl`,
        });
      continue;
    }
    if (d.host === undefined || d.type === 'folder') continue;
    if (tlsOff(d.tls)) {
      if (!isLoopbackHost(d.host))
        warnings.push({
          code: 'tls-off',
          key: `${key}.tls`,
          message: `${kind} destination '${d.name}' at ${d.host} is not loopback and has no TLS: results with patient data cross the network in clear; configure ${key}.tls`,
        });
    } else if ((d.tls as { verifyServer?: unknown }).verifyServer === false) {
      warnings.push({
        code: 'tls-unverified',
        key: `${key}.tls.verifyServer`,
        message: `${kind} destination '${d.name}' does not verify the peer's certificate (verifyServer: false): anyone on the path can pose as it; give it a caFile instead`,
      });
    }
  }
  const syslog = config.audit?.syslog;
  if (syslog !== undefined && syslog.transport !== 'tls' && !isLoopbackHost(syslog.host)) {
    warnings.push({
      code: 'tls-off',
      key: 'audit.syslog.transport',
      message: `audit messages go to ${syslog.host} over ${syslog.transport}, not TLS (RFC 5425): they name studies and callers; use transport: tls`,
    });
  }
  const { admin } = config;
  if (admin.enabled && !isLoopbackHost(admin.host) && tlsOff(admin.tls)) {
    warnings.push({
      code: 'admin-plain-http',
      key: 'admin.tls',
      message: `admin.host is ${admin.host}, not loopback, without admin.tls: console passwords and session cookies cross the network in clear; configure admin.tls (or keep the port on loopback behind a TLS reverse proxy)`,
    });
  }
  for (const { key, file } of keyFiles(config)) {
    let mode: number;
    try {
      mode = stat(file).mode;
    } catch {
      continue; // a missing file is the start's problem (it stops with a file error), not a permission one
    }
    if ((mode & 0o077) !== 0)
      warnings.push({
        code: 'key-file-readable',
        key,
        message: `${key} ${file} is readable by ${(mode & 0o070) !== 0 ? 'its group' : ''}${(mode & 0o070) !== 0 && (mode & 0o007) !== 0 ? ' and ' : ''}${(mode & 0o007) !== 0 ? 'others' : ''} (mode ${(mode & 0o777).toString(8).padStart(3, '0')}): a private key must be readable by the gateway's user only; chmod 600 it`,
      });
  }
  return warnings;
}

/** Every string under a key named like keyFile (keyFile, tlsKeyFile, ...), wherever a part put it. */
function keyFiles(value: unknown, key = ''): Array<{ key: string; file: string }> {
  if (value === null || typeof value !== 'object') return [];
  const found: Array<{ key: string; file: string }> = [];
  for (const [name, child] of Object.entries(value as Record<string, unknown>)) {
    const path = key === '' ? name : `${key}.${name}`;
    if (/keyfile$/i.test(name) && typeof child === 'string') found.push({ key: path, file: child });
    else found.push(...keyFiles(child, path));
  }
  return found;
}
