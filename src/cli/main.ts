#!/usr/bin/env node
import { readFileSync, unwatchFile, watchFile } from 'node:fs';
import { parseArgs } from 'node:util';
import { modelDirectoryProblems } from '../config/model-dirs.js';
import { checkExplainTarget } from '../config/explain-target.js';
import { securityWarnings } from '../config/security-warnings.js';
import { readManifest } from '../inference/model-manifest.js';
import { loadConfig, modelDirectory, resolveConfigPath, CONFIG_ENV_VAR } from '../config/load-config.js';
import { GatewayError, describeError, errorCode } from '../errors.js';
import { Gateway } from '../gateway.js';
import { createLogger } from '../logging/logger.js';
import { StoreRefusal } from '../store/console-queries.js';
import { checkModelDirectory } from '../inference/model-loader.js';
import type { EnginePreference } from '../engines/engine-types.js';
import { classifyFiles, formatClassifyReports, parseEngineOption } from './classify-command.js';
import { ADMIN_USAGE, adminCommand } from './admin-command.js';
import { AUDIT_USAGE, auditCommand } from './audit-command.js';
import { UsageError } from './cli-args.js';
import { DELIVERIES_USAGE, deliveriesCommand } from './deliveries-command.js';
import { DRAIN_USAGE, drainCommand } from './drain-command.js';
import { JOBS_USAGE, jobsCommand } from './jobs-command.js';
import { REPROCESS_USAGE, reprocessCommand } from './reprocess-command.js';
import { formatModelCard } from './model-card.js';
import { explainRouting, formatRoutingDecision } from './rules-command.js';
import { RENDER_USAGE, renderCommand } from './render-command.js';
import { SEND_USAGE, echoCommand, sendCommand } from './send-command.js';
import { phantomsCommand } from './phantoms-command.js';
import { train } from './train-command.js';

const USAGE = `cxr-gateway: chest X-ray DICOM gateway

Usage:
  cxr-gateway start [--config FILE]          run the daemon (embedded default config when none is given)
  cxr-gateway check-config [FILE]            validate a config file and print the effective config
  cxr-gateway jobs [--state S] [--destination D] [--ae AE] [--accession A] [--since ISO] [--limit N] [--json]
                                             list jobs from the store, newest first (works while the daemon runs)
  cxr-gateway deliveries [--state parked] ... | release ID | release --destination D | discard ID --reason TEXT
                                             list deliveries; release or discard parked ones
  cxr-gateway reprocess STUDY_UID            process a study again as a new revision (after a model or rule change)
  cxr-gateway audit [--since ISO] [--action A] [--user U] [--json]
                                             the audit trail of admin actions
  cxr-gateway admin add-user NAME --role viewer|admin | set-password NAME | remove-user NAME | users ...
                                             operations console users (see: admin --help)
  cxr-gateway drain [--node NAME] [--undo] [--wait]
                                             drain a cluster node before maintenance (see: drain --help)
  cxr-gateway classify FILE.dcm... [--model DIR] [--engine auto|onnxruntime|tfjs] [--config FILE] [--json]
                                             classify images (or say why one is skipped) with the model
  cxr-gateway model check [DIR]              validate a model directory and print its model card
${RENDER_USAGE}
${SEND_USAGE}
  cxr-gateway phantoms --out DIR --n N --seed S ...  synthetic chest X-ray studies (see: phantoms --help)
  cxr-gateway train ...                      twice transfer learning with output neuron keeping (see: train --help)
  cxr-gateway rules explain FILE.dcm [--calling-ae AE] [--called-ae AE] [--ip ADDRESS] [--config FILE] [--json]
                                             which routing rule matches an image, and why

The config file comes from --config, else from $${CONFIG_ENV_VAR}, else the embedded default.`;

type CommandResult = number | Promise<number>;

/**
 * The console commands (store and users): a usage error prints the reason and the command's usage (exit 2); a
 * refusal (unknown id, wrong state, user exists...) prints its code and sentence (exit 1): nothing was changed.
 */
function consoleCommand(run: (argv: string[]) => CommandResult, usage: string, argv: string[]): CommandResult {
  const refused = (error: unknown): number => {
    if (error instanceof UsageError) {
      process.stderr.write(`cxr-gateway: ${error.message}\n\n${usage}\n`);
      return 2;
    }
    if (error instanceof StoreRefusal || error instanceof GatewayError) {
      process.stderr.write(`cxr-gateway: ${error.code}: ${error.message}\n`);
      return 1;
    }
    throw error;
  };
  try {
    const result = run(argv);
    return typeof result === 'number' ? result : result.catch(refused);
  } catch (error) {
    return refused(error);
  }
}

function main(argv: string[]): CommandResult {
  // render parses its own flags (--png, --layout ...), which the strict parser below would refuse.
  if (argv[0] === 'render') return renderCommand(argv.slice(1));
  if (argv[0] === 'send') return sendCommand(argv.slice(1));
  if (argv[0] === 'echo') return echoCommand(argv.slice(1));
  if (argv[0] === 'phantoms') return phantomsCommand(argv.slice(1));
  if (argv[0] === 'train') return train(argv.slice(1));
  // The console commands parse their own flags; `--config FILE` may also come before the command, as it could
  // for `jobs` before they had flags of their own.
  const at = argv[0] === '--config' || argv[0] === '-c' ? 2 : 0;
  const consoleCommands = new Map<string, [(args: string[]) => CommandResult, string]>([
    ['jobs', [jobsCommand, JOBS_USAGE]],
    ['deliveries', [deliveriesCommand, DELIVERIES_USAGE]],
    ['reprocess', [reprocessCommand, REPROCESS_USAGE]],
    ['audit', [auditCommand, AUDIT_USAGE]],
    ['admin', [adminCommand, ADMIN_USAGE]],
    ['drain', [drainCommand, DRAIN_USAGE]],
  ]);
  const named = consoleCommands.get(argv[at] ?? '');
  if (named !== undefined) return consoleCommand(named[0], named[1], [...argv.slice(0, at), ...argv.slice(at + 1)]);
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      config: { type: 'string', short: 'c' },
      json: { type: 'boolean', default: false },
      model: { type: 'string', short: 'm' },
      engine: { type: 'string' },
      'calling-ae': { type: 'string' },
      'called-ae': { type: 'string' },
      ip: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
      version: { type: 'boolean', default: false },
    },
  });
  const [command, ...rest] = positionals;
  if (values.version) {
    process.stdout.write(`${packageVersion()}\n`);
    return 0;
  }
  if (values.help || command === undefined || command === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return command === undefined && !values.help ? 2 : 0;
  }
  switch (command) {
    case 'start':
      return start(resolveConfigPath(values.config, process.env));
    case 'check-config':
      return checkConfig(resolveConfigPath(rest[0] ?? values.config, process.env));
    case 'classify':
      return classify(
        rest,
        resolveConfigPath(values.config, process.env),
        values.model,
        values.json === true,
        parseEngineOption(values.engine),
      );
    case 'model':
      if (rest[0] !== 'check') break;
      return modelCheck(rest[1] ?? values.model, resolveConfigPath(values.config, process.env));
    case 'rules':
      if (rest[0] !== 'explain' || rest[1] === undefined) break;
      return rulesExplain(rest[1], resolveConfigPath(values.config, process.env), values, values.json === true);
    default:
      break;
  }
  process.stderr.write(`unknown command '${[command, ...rest.slice(0, 1)].join(' ')}'\n\n${USAGE}\n`);
  return 2;
}

async function classify(
  files: string[],
  configPath: string | undefined,
  model: string | undefined,
  json: boolean,
  engineChoice: EnginePreference | undefined,
): Promise<number> {
  if (files.length === 0) throw new GatewayError('USAGE', 'classify needs at least one DICOM file');
  const { config } = loadConfig(configPath);
  const { reports, engine } = await classifyFiles(files, model ?? modelDirectory(config), config, engineChoice);
  process.stdout.write(
    json
      ? `${JSON.stringify({ engine: engine.engine, device: engine.device, skipped: engine.skipped, results: reports }, null, 2)}\n`
      : formatClassifyReports(reports),
  );
  return reports.some((r) => r.status === 'failed') ? 1 : 0;
}

function modelCheck(dir: string | undefined, configPath: string | undefined): number {
  const modelDir = dir ?? modelDirectory(loadConfig(configPath).config);
  process.stdout.write(formatModelCard(checkModelDirectory(modelDir)));
  return 0;
}

function rulesExplain(
  file: string,
  configPath: string | undefined,
  flags: { 'calling-ae'?: string; 'called-ae'?: string; ip?: string },
  json: boolean,
): number {
  const { config } = loadConfig(configPath);
  const explanation = explainRouting(file, config, {
    callingAe: flags['calling-ae'] ?? '',
    calledAe: flags['called-ae'] ?? config.dicom.aeTitle,
    sourceIp: flags.ip ?? '',
  });
  const { decision, eligibility } = explanation;
  const summary = {
    rule: decision.rule?.name ?? null,
    action: decision.rule?.action ?? null,
    eligibility: eligibility ?? null,
    verdicts: decision.verdicts,
  };
  process.stdout.write(json ? `${JSON.stringify(summary, null, 2)}\n` : formatRoutingDecision(file, explanation));
  return 0;
}

async function start(configPath: string | undefined): Promise<number> {
  const { config, source, notices } = loadConfig(configPath);
  const logger = createLogger(config.logging);
  logger.info('starting cxr-gateway', {
    event: 'GATEWAY-7001',
    version: packageVersion(),
    config: source,
    pid: process.pid,
  });
  for (const notice of notices) logger.warn('configuration option ignored', { event: 'CONFIG-9001', why: notice });
  for (const w of securityWarnings(config))
    logger.warn('security warning', { event: 'CONFIG-9005', code: w.code, key: w.key, why: w.message });
  const gateway = new Gateway(config, logger, { configPath, version: packageVersion() });
  // Signals are handled from the first moment: a SIGTERM during start-up stops cleanly once start-up
  // has finished, and a SIGHUP never kills the daemon.
  let started = false;
  let stopping = false;
  let pendingStop: string | undefined;
  // A SIGHUP while starting (the admin port may take a moment) is applied once started, not dropped.
  let pendingReload: string | undefined;
  let resolveExit: (code: number) => void = () => undefined;
  const exited = new Promise<number>((resolve) => (resolveExit = resolve));
  const shutdown = (signal: string) => {
    if (stopping) return;
    if (!started) {
      pendingStop = signal;
      return;
    }
    stopping = true;
    logger.info('stopping: no new associations; finishing transfers in progress', { event: 'GATEWAY-7002', signal });
    if (configPath !== undefined) unwatchFile(configPath);
    gateway.stop().then(
      () => {
        logger.info('stopped', { event: 'GATEWAY-7003' });
        resolveExit(0);
      },
      (error: unknown) => {
        logger.error('error while stopping', { event: 'GATEWAY-7004', error: describeError(error) });
        resolveExit(1);
      },
    );
  };
  // Reload on SIGHUP and when the file changes; a file that does not validate leaves the running
  // configuration in place and says why.
  const reload = (trigger: string) => {
    if (stopping || configPath === undefined) return;
    if (!started) {
      pendingReload = trigger;
      return;
    }
    try {
      const loaded = loadConfig(configPath);
      for (const notice of loaded.notices)
        logger.warn('configuration option ignored', { event: 'CONFIG-9001', why: notice });
      void gateway.reload(loaded.config, trigger);
    } catch (error) {
      logger.error('configuration reload refused: keeping the running configuration', {
        event: 'CONFIG-9002',
        trigger,
        code: errorCode(error, 'INTERNAL'),
        error: describeError(error),
      });
      // /healthz says so until a later reload succeeds: the file on disk is not what runs.
      gateway.reloadRefused(trigger, describeError(error));
    }
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGHUP', () => reload('SIGHUP'));
  try {
    await gateway.start();
  } catch (error) {
    logger.error('could not start', {
      event: 'GATEWAY-7005',
      code: errorCode(error, 'INTERNAL'),
      error: describeError(error),
    });
    await gateway.stop().catch(() => undefined);
    // Worker threads or sockets half set up must not keep a failed daemon alive: exit now.
    process.exit(1);
  }
  started = true;
  if (configPath !== undefined) {
    let timer: NodeJS.Timeout | undefined;
    watchFile(configPath, { interval: 1000 }, () => {
      if (timer) clearTimeout(timer);
      timer = setTimeout(() => reload('file change'), 300);
    });
  }
  if (pendingStop !== undefined) shutdown(pendingStop);
  else if (pendingReload !== undefined) reload(pendingReload);
  return exited;
}

function checkConfig(configPath: string | undefined): number {
  const { config, source, notices } = loadConfig(configPath);
  for (const notice of notices) process.stderr.write(`warning: ${notice}\n`);
  // Security warnings do not fail the check: they may be a site's deliberate choice (exit status stays 0).
  for (const w of securityWarnings(config)) process.stderr.write(`warning: security: ${w.message}\n`);
  // A model directory that is not there passes the schema but leaves every study routed to it unprocessed.
  const problems = modelDirectoryProblems(config);
  if (problems.length > 0) {
    process.stderr.write(
      `${source}: ${problems.map((p) => `${p.problem}; studies routed to model '${p.model}' would never be processed`).join('\n')}\n`,
    );
    return 1;
  }
  // A class name in explain.target passes the schema; the daemon would refuse it at start (EXPLAIN_TARGET_UNKNOWN).
  try {
    checkExplainTarget(
      config.explain.target,
      Object.entries(config.models).map(([name, dir]) => [name, readManifest(dir).classes] as const),
    );
  } catch (error) {
    if (!(error instanceof GatewayError)) throw error;
    process.stderr.write(`${source}: ${error.code}: ${error.message}\n`);
    return 1;
  }
  process.stdout.write(`${source}: valid\n${JSON.stringify(config, null, 2)}\n`);
  return 0;
}

function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  return pkg.version;
}

function exitWith(code: number): void {
  process.exitCode = code;
}

try {
  const result = main(process.argv.slice(2));
  if (typeof result === 'number') exitWith(result);
  else
    result.then(exitWith, (error: unknown) => {
      process.stderr.write(`cxr-gateway: ${describeError(error)}\n`);
      exitWith(1);
    });
} catch (error) {
  process.stderr.write(`cxr-gateway: ${describeError(error)}\n`);
  exitWith(1);
}
