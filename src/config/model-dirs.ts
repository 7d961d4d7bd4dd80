import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { MANIFEST_FILE } from '../inference/model-manifest.js';
import type { GatewayConfig } from './schema.js';

export interface ModelDirProblem {
  model: string;
  dir: string;
  /** The sentence for the admin. */
  problem: string;
}

/**
 * The configured model directories that cannot be loaded: missing, not a folder, or without a manifest. A study
 * routed to such a model is acknowledged but never processed, so check-config fails on these and the daemon
 * says so at error level when it starts.
 */
export function modelDirectoryProblems(config: Pick<GatewayConfig, 'models'>): ModelDirProblem[] {
  const problems: ModelDirProblem[] = [];
  for (const [model, dir] of Object.entries(config.models)) {
    let problem: string | undefined;
    if (!existsSync(dir)) problem = `models.${model}: directory ${dir} does not exist`;
    else if (!statSync(dir).isDirectory()) problem = `models.${model}: ${dir} is not a directory`;
    else if (!existsSync(path.join(dir, MANIFEST_FILE)))
      problem = `models.${model}: ${dir} has no ${MANIFEST_FILE} (not a model directory)`;
    if (problem !== undefined) problems.push({ model, dir, problem });
  }
  return problems;
}
