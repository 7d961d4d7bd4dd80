import { readFileSync } from 'node:fs';
import type { GatewayConfig } from '../config/schema.js';
import { parsePart10Header } from '../dicom/part10-header.js';
import { readDatasetAttributes } from '../routing/dataset-attributes.js';
import { routeInstance, type RoutingDecision } from '../routing/rule-matcher.js';

export interface ExplainOptions {
  callingAe: string;
  calledAe: string;
  sourceIp: string;
}

/** `cxr-gateway rules explain FILE`: the routing decision the daemon would take, with every condition checked. */
export function explainRouting(file: string, config: GatewayConfig, options: ExplainOptions): RoutingDecision {
  parsePart10Header(readFileSync(file), file);
  return routeInstance(config.rules, { ...options, attribute: readDatasetAttributes(file) });
}

export function formatRoutingDecision(file: string, decision: RoutingDecision): string {
  const lines = [`${file}:`];
  for (const verdict of decision.verdicts) {
    lines.push(`  rule '${verdict.rule}': ${verdict.matched ? 'MATCHES' : 'does not match'}`);
    for (const reason of verdict.reasons) lines.push(`    ${reason}`);
  }
  const rule = decision.rule;
  if (rule === undefined) lines.push('  => no rule matches: the study is ignored');
  else if (rule.action.ignore === true) lines.push(`  => rule '${rule.name}': ignore`);
  else {
    const a = rule.action;
    lines.push(
      `  => rule '${rule.name}': model ${a.model}, outputs ${a.outputs.join('+')}, PACS [${a.pacs.join(', ')}], RIS [${a.ris.join(', ')}], priority ${a.priority}`,
    );
  }
  return `${lines.join('\n')}\n`;
}
