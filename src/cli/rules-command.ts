import { readFileSync } from 'node:fs';
import type { GatewayConfig } from '../config/schema.js';
import { walkStoredDataset } from '../dicom/dataset-walker.js';
import { parsePart10Header } from '../dicom/part10-header.js';
import { checkEligibility, type Eligibility } from '../inference/eligibility.js';
import { readDatasetAttributes } from '../routing/dataset-attributes.js';
import { routeInstance, type RoutingDecision } from '../routing/rule-matcher.js';

export interface ExplainOptions {
  callingAe: string;
  calledAe: string;
  sourceIp: string;
}

export interface RoutingExplanation {
  decision: RoutingDecision;
  /**
   * For an image a rule processes: whether inference takes it (inference.eligibility, with the rule's own
   * overrides), as the daemon decides after routing; undefined when the image is ignored by routing.
   */
  eligibility: Eligibility | undefined;
}

/**
 * `cxr-gateway rules explain FILE`: the routing decision the daemon would take, with every condition checked,
 * and the eligibility check that follows it (a lateral view routed to a model is still not classified).
 */
export function explainRouting(file: string, config: GatewayConfig, options: ExplainOptions): RoutingExplanation {
  const header = parsePart10Header(readFileSync(file), file);
  const decision = routeInstance(config.rules, { ...options, attribute: readDatasetAttributes(file) });
  const action = decision.rule?.action;
  if (action === undefined || action.ignore === true) return { decision, eligibility: undefined };
  const { attributes } = walkStoredDataset(file, header.datasetOffset, header.transferSyntaxUid);
  return {
    decision,
    eligibility: checkEligibility(attributes, { ...config.inference.eligibility, ...(action.eligibility ?? {}) }),
  };
}

export function formatRoutingDecision(file: string, { decision, eligibility }: RoutingExplanation): string {
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
    if (eligibility?.eligible === false)
      lines.push(`  => but inference skips the image: ${eligibility.reason} (inference.eligibility)`);
    else lines.push('  => the image is classified and explained');
  }
  return `${lines.join('\n')}\n`;
}
