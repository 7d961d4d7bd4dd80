import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import { z } from 'zod';
import { GatewayError, describeError } from '../errors.js';
import { packageRoot } from '../reporting/package-root.js';
import { configSchema, type GatewayConfig } from './schema.js';

export const CONFIG_ENV_VAR = 'CXR_GATEWAY_CONFIG';

export interface LoadedConfig {
  config: GatewayConfig;
  /** Where it came from: a file path, or `embedded default`. */
  source: string;
  /** Sentences for the admin about options the file sets that no longer do anything (removed options). */
  notices: string[];
}

/**
 * Options that were removed. A site file copied from an older example may still set them: they are dropped with
 * a notice (logged at warn at start and reload, printed by check-config), never a refusal, so an upgrade never
 * stops a running hospital daemon over a line that did nothing.
 */
const REMOVED_OPTIONS: ReadonlyArray<{ section: string; key: string; why: string }> = [
  {
    section: 'inference',
    key: 'maxWaitMs',
    why: "it never had an effect (each job's images go to the model in batches of up to inference.maxBatch); it is ignored: delete the line",
  },
];

/** The config path as the admin gave it: `--config` wins over the environment; none means the embedded default. */
export function resolveConfigPath(flag: string | undefined, env: NodeJS.ProcessEnv): string | undefined {
  if (flag !== undefined && flag !== '') return flag;
  const fromEnv = env[CONFIG_ENV_VAR];
  return fromEnv !== undefined && fromEnv !== '' ? fromEnv : undefined;
}

export function loadConfig(configPath: string | undefined, cwd: string = process.cwd()): LoadedConfig {
  if (configPath === undefined) {
    return { config: resolvePaths(configSchema.parse({}), cwd, true), source: 'embedded default', notices: [] };
  }
  let text: string;
  try {
    text = readFileSync(configPath, 'utf8');
  } catch (error) {
    throw new GatewayError('CONFIG_UNREADABLE', `cannot read config file ${configPath}: ${describeError(error)}`);
  }
  const { config, raw, notices } = parseConfigDocument(text, configPath);
  // Relative paths in a file are relative to that file, so a service started from / finds its data. A file
  // without `models:` gets the embedded default's models, which are the package's own.
  const modelsFromDefault = !(typeof raw === 'object' && raw !== null && 'models' in raw);
  return {
    config: resolvePaths(config, path.dirname(path.resolve(configPath)), modelsFromDefault),
    source: configPath,
    notices,
  };
}

export function parseConfigText(text: string, sourceName: string): GatewayConfig {
  return parseConfigDocument(text, sourceName).config;
}

/** The config and what the admin should be told about it (removed options), from YAML text. */
export function parseConfigTextWithNotices(
  text: string,
  sourceName: string,
): { config: GatewayConfig; notices: string[] } {
  const { config, notices } = parseConfigDocument(text, sourceName);
  return { config, notices };
}

function parseConfigDocument(
  text: string,
  sourceName: string,
): { config: GatewayConfig; raw: unknown; notices: string[] } {
  let raw: unknown;
  try {
    raw = parseYaml(text) ?? {};
  } catch (error) {
    const where = error instanceof YAMLParseError && error.linePos ? ` (line ${error.linePos[0].line})` : '';
    throw new GatewayError('CONFIG_INVALID', `${sourceName}${where}: not valid YAML: ${describeError(error)}`);
  }
  const notices = dropRemovedOptions(raw, sourceName);
  const result = configSchema.safeParse(raw);
  if (!result.success) {
    throw new GatewayError('CONFIG_INVALID', `${sourceName}: ${formatIssues(result.error)}`);
  }
  return { config: result.data, raw, notices };
}

function dropRemovedOptions(raw: unknown, sourceName: string): string[] {
  const notices: string[] = [];
  for (const { section, key, why } of REMOVED_OPTIONS) {
    const holder: unknown = typeof raw === 'object' && raw !== null ? Reflect.get(raw, section) : undefined;
    if (typeof holder === 'object' && holder !== null && key in holder) {
      Reflect.deleteProperty(holder, key);
      notices.push(`${sourceName}: ${section}.${key} was removed: ${why}`);
    }
  }
  return notices;
}

function formatIssues(error: z.ZodError): string {
  return error.issues
    .map((issue) => {
      const key = issue.path.length > 0 ? issue.path.map(String).join('.') : '(top level)';
      if (issue.code === 'unrecognized_keys') {
        const prefix = issue.path.length > 0 ? `${key}.` : '';
        return `${issue.keys.map((k) => prefix + k).join(', ')}: unknown key (misspelt?)`;
      }
      return `${key}: ${issue.message}`;
    })
    .join('; ');
}

/** The directory of a model by name (inference.defaultModel when none is given). */
export function modelDirectory(config: GatewayConfig, name?: string): string {
  const wanted = name ?? config.inference.defaultModel;
  const dir = config.models[wanted];
  if (dir === undefined) throw new GatewayError('CONFIG_INVALID', `no model named '${wanted}' in models`);
  return dir;
}

/**
 * Relative paths against `base` (the config file's folder, or the working directory for the embedded
 * default), except the embedded default's models (`modelsFromDefault`): those ship with the package and
 * resolve against its root, wherever the daemon is started from and wherever the site file lives.
 */
function resolvePaths(config: GatewayConfig, base: string, modelsFromDefault: boolean): GatewayConfig {
  const modelBase = modelsFromDefault ? packageRoot() : base;
  return resolveTlsFiles(
    {
      ...config,
      storage: { ...config.storage, dataDir: path.resolve(base, config.storage.dataDir) },
      models: Object.fromEntries(
        Object.entries(config.models).map(([name, dir]) => [name, path.resolve(modelBase, dir)]),
      ),
      destinations: {
        pacs: config.destinations.pacs.map((d) =>
          d.type === 'folder' ? { ...d, path: path.resolve(base, d.path) } : d,
        ),
        ris: config.destinations.ris.map((d) => (d.type === 'folder' ? { ...d, path: path.resolve(base, d.path) } : d)),
      },
    },
    base,
  );
}

/**
 * Every certificate, key, CA and secret file (a `caFile`, `certFile`, `keyFile`, `passwordFile` or `tokenFile` key anywhere: DICOM, PACS, RIS, admin,
 * audit) resolved against the config file's folder, like dataDir, so `tls/gateway.key` beside the config works
 * whatever folder the daemon starts in.
 */
function resolveTlsFiles<T>(value: T, base: string): T {
  if (Array.isArray(value)) return value.map((v: unknown) => resolveTlsFiles(v, base)) as T;
  if (typeof value !== 'object' || value === null) return value;
  return Object.fromEntries(
    Object.entries(value).map(([key, v]) => [
      key,
      typeof v === 'string' && /^(ca|cert|key|password|token)File$/.test(key)
        ? path.resolve(base, v)
        : resolveTlsFiles(v, base),
    ]),
  ) as T;
}
