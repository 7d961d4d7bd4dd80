import { chmod, readdir, readFile, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { Document, isMap, parseDocument } from 'yaml';
import type { ZodIssue } from 'zod';
import { configSchema, type GatewayConfig } from '../config/schema.js';
import { parseConfigTextWithNotices } from '../config/load-config.js';
import { describeError } from '../errors.js';
import { storedAction } from '../pipeline/stored-columns.js';
import { readDatasetAttributes } from '../routing/dataset-attributes.js';
import { routeInstance } from '../routing/rule-matcher.js';
import type { RoutingRule } from '../routing/rule-schema.js';
import { writeFileAtomic } from '../store/atomic-file.js';
import type { ConsoleQueries, InstanceRowOut } from '../store/console-queries.js';
import {
  ConsoleRefusal,
  type DryRun,
  type DryRunRow,
  type RoutingOutcome,
  type RuleIssue,
  type RulesValidation,
} from './console-types.js';

/**
 * The rules editor for admins without a text editor on the server: validate a candidate rule set against the
 * running configuration, dry-run it against stored studies, apply it to the config file. The candidate is the
 * `rules` section only; everything else comes from the running configuration (validate, dry run) or from the
 * file on disk (apply), so a rule naming a destination or model that does not exist is refused with its key.
 */

/** How many earlier versions of the config file are kept beside it. */
export const KEPT_BACKUPS = 10;

/** The whole next configuration (running config with the candidate rules) through the config schema. */
export function validateRules(running: GatewayConfig, candidate: unknown): RulesValidation {
  if (!Array.isArray(candidate)) {
    return { ok: false, issues: [{ path: 'rules', message: 'the rule set must be a list of rules' }] };
  }
  const result = configSchema.safeParse({ ...running, rules: candidate });
  if (result.success) return { ok: true, rules: result.data.rules };
  return { ok: false, issues: result.error.issues.map(toIssue) };
}

function toIssue(issue: ZodIssue): RuleIssue {
  const key = issue.path.length > 0 ? issue.path.map(String).join('.') : '(top level)';
  if (issue.code === 'unrecognized_keys') {
    return {
      path: key,
      message: `unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.join(', ')} (misspelt?)`,
    };
  }
  return { path: key, message: issue.message };
}

/** The issues as one sentence for a ConsoleRefusal (the HTTP side also gets them one by one from validateRules). */
export function issuesSentence(issues: readonly RuleIssue[]): string {
  return `the rule set is invalid: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`;
}

function validated(running: GatewayConfig, candidate: unknown): RoutingRule[] {
  const validation = validateRules(running, candidate);
  if (!validation.ok) throw new ConsoleRefusal(422, 'RULES_INVALID', issuesSentence(validation.issues));
  return validation.rules as RoutingRule[];
}

const IGNORED: Omit<RoutingOutcome, 'rule'> = {
  ignored: true,
  model: null,
  outputs: [],
  pacs: [],
  ris: [],
  priority: null,
};

/**
 * What routing decides for a study's instances, as pipeline.ts route() does: each image is routed on its own,
 * the first image whose rule processes decides the study's model, outputs, destinations and priority; when no
 * image is processed the study is ignored (rule: the rule that ignored the first image, if one did).
 */
export function routeStudy(rules: readonly RoutingRule[], instances: readonly InstanceRowOut[]): RoutingOutcome {
  let ignoringRule: string | null = null;
  for (const instance of instances) {
    let decision;
    try {
      decision = routeInstance(rules, {
        callingAe: instance.callingAe,
        calledAe: instance.calledAe,
        sourceIp: instance.sourceIp,
        attribute: readDatasetAttributes(instance.path),
      });
    } catch {
      // Unreadable (as in the pipeline): this image is not routed; the others decide.
      continue;
    }
    const rule = decision.rule;
    if (rule === undefined) continue;
    if (rule.action.ignore === true) {
      ignoringRule ??= rule.name;
      continue;
    }
    const a = rule.action;
    return {
      rule: rule.name,
      ignored: false,
      model: a.model,
      outputs: [...a.outputs],
      pacs: [...a.pacs],
      ris: [...a.ris],
      priority: a.priority,
    };
  }
  return { rule: ignoringRule, ...IGNORED };
}

const COMPARED = ['ignored', 'rule', 'model', 'outputs', 'pacs', 'ris', 'priority'] as const;

/** Fields that differ; two ignored outcomes are the same outcome whichever rule (or none) ignored them. */
export function outcomeChanges(happened: RoutingOutcome | null, would: RoutingOutcome): string[] {
  if (happened === null) return [...COMPARED];
  if (happened.ignored && would.ignored) return [];
  return COMPARED.filter((field) => JSON.stringify(happened[field]) !== JSON.stringify(would[field]));
}

/**
 * What routing decided for the study's newest job: null when it was never routed (ready, or its action cannot
 * be read back).
 */
function happenedOf(queries: ConsoleQueries, studyInstanceUid: string): RoutingOutcome | null {
  const job = queries.studyRows(studyInstanceUid)?.jobs[0];
  if (job === undefined || job.state === 'ready') return null;
  if (job.state === 'ignored') return { rule: job.rule, ...IGNORED };
  if (job.action === null) return null;
  try {
    const a = storedAction({ jobId: job.id, action: job.action });
    return {
      rule: job.rule,
      ignored: false,
      model: a.model,
      outputs: [...a.outputs],
      pacs: [...a.pacs],
      ris: [...a.ris],
      priority: a.priority,
    };
  } catch {
    return null;
  }
}

/** The candidate (validated first: ConsoleRefusal 422) against the newest `last` stored studies. */
export function dryRunRules(running: GatewayConfig, queries: ConsoleQueries, candidate: unknown, last: number): DryRun {
  if (!Number.isInteger(last) || last < 1 || last > 1000) {
    throw new ConsoleRefusal(400, 'BAD_REQUEST', `last must be a whole number from 1 to 1000 (got ${String(last)})`);
  }
  const rules = validated(running, candidate);
  const rows: DryRunRow[] = queries.recentStudies(last).map(({ study, instances }) => {
    const happened = happenedOf(queries, study.studyInstanceUid);
    const would = routeStudy(rules, instances);
    return {
      studyInstanceUid: study.studyInstanceUid,
      accessionNumber: study.accessionNumber,
      callingAe: study.callingAe,
      receivedAt: study.lastReceivedAt,
      happened,
      would,
      changes: outcomeChanges(happened, would),
    };
  });
  return { studies: rows.length, changed: rows.filter((r) => r.changes.length > 0).length, rows };
}

/** `<name>.<UTC timestamp>.bak`, e.g. cxr-gateway.yaml.20261206T124500.123Z.bak: sorts by time as text. */
export function backupName(configFile: string, at: number): string {
  const stamp = new Date(at).toISOString().replace(/[-:]/g, '');
  return `${path.basename(configFile)}.${stamp}.bak`;
}

function isBackupOf(configFile: string, entry: string): boolean {
  const base = path.basename(configFile);
  return entry.startsWith(`${base}.`) && /^\d{8}T\d{6}\.\d{3}Z\.bak$/.test(entry.slice(base.length + 1));
}

/** The config file's text with its `rules` key replaced; comments and layout elsewhere are kept. */
export function withRules(text: string, rules: unknown[]): string {
  const doc = parseDocument(text);
  if (doc.errors.length > 0) {
    throw new ConsoleRefusal(
      409,
      'CONFIG_INVALID',
      `the config file is not valid YAML: ${doc.errors[0]?.message ?? ''}`,
    );
  }
  if (doc.contents === null) {
    // Nothing but comments (or nothing): the comments stay, the rules follow them.
    const separator = text === '' || text.endsWith('\n') ? '' : '\n';
    return `${text}${separator}${new Document({ rules }).toString({ lineWidth: 120 })}`;
  }
  if (!isMap(doc.contents)) {
    throw new ConsoleRefusal(409, 'CONFIG_INVALID', 'the config file does not hold a YAML mapping at its top level');
  }
  doc.set('rules', doc.createNode(rules));
  return doc.toString({ lineWidth: 120 });
}

export interface ApplyOptions {
  /** undefined: the daemon runs on the embedded default, there is no file to write (409). */
  configPath: string | undefined;
  running: GatewayConfig;
  candidate: unknown;
  /** Loads the written file as the daemon does (relative paths resolved) for the reload. */
  load: (configPath: string) => GatewayConfig;
  /** The gateway's reload; resolves with its outcome. */
  reload: (next: GatewayConfig) => Promise<{ ok: boolean; error: string | null }>;
  now: number;
}

export interface Applied {
  backup: string;
  rules: number;
  before: unknown;
  after: unknown[];
}

/**
 * Validates the candidate against the running config (422 with the issues), then against the file on disk with
 * the candidate in it (422: the file may differ from what runs), keeps the current file as a timestamped
 * backup (the newest KEPT_BACKUPS stay), writes the new file atomically, and reloads. A refused reload puts the
 * previous file back, so the file never says something the daemon does not run; ConsoleRefusal 503 then.
 */
export async function applyRules(o: ApplyOptions): Promise<Applied> {
  if (o.configPath === undefined) {
    throw new ConsoleRefusal(
      409,
      'RULES_NO_CONFIG_FILE',
      'the daemon runs on the embedded default configuration: there is no file to write the rules to; start it with --config FILE (see config/cxr-gateway.example.yaml)',
    );
  }
  const configPath = o.configPath;
  validated(o.running, o.candidate);
  const candidate = o.candidate as unknown[];
  let previous: Buffer;
  try {
    previous = await readFile(configPath);
  } catch (error) {
    throw new ConsoleRefusal(
      409,
      'CONFIG_UNREADABLE',
      `cannot read the config file ${configPath}: ${describeError(error)}`,
    );
  }
  const next = withRules(previous.toString('utf8'), candidate);
  try {
    parseConfigTextWithNotices(next, configPath);
  } catch (error) {
    throw new ConsoleRefusal(
      422,
      'RULES_INVALID',
      `with these rules the config file would not load: ${describeError(error)}`,
    );
  }
  const dir = path.dirname(path.resolve(configPath));
  const name = path.basename(configPath);
  const backup = backupName(configPath, o.now);
  // The new file and the backup keep the file's permissions: a site file readable only by the service user
  // (it may hold secrets) must not become world-readable by an apply.
  const mode = (await stat(configPath)).mode & 0o777;
  const write = async (file: string, data: Uint8Array) => {
    await writeFileAtomic(dir, file, data);
    await chmod(path.join(dir, file), mode);
  };
  await write(backup, previous);
  await write(name, Buffer.from(next, 'utf8'));
  await pruneBackups(dir, name);
  const outcome = await o.reload(o.load(configPath));
  if (!outcome.ok) {
    await write(name, previous);
    throw new ConsoleRefusal(
      503,
      'RULES_RELOAD_REFUSED',
      `the daemon refused to reload with these rules (${outcome.error ?? 'no reason given'}); the previous config file was put back`,
    );
  }
  return { backup: path.join(dir, backup), rules: candidate.length, before: o.running.rules, after: candidate };
}

async function pruneBackups(dir: string, name: string): Promise<void> {
  const backups = (await readdir(dir)).filter((entry) => isBackupOf(name, entry)).sort();
  for (const old of backups.slice(0, Math.max(0, backups.length - KEPT_BACKUPS))) {
    await rm(path.join(dir, old), { force: true });
  }
}
