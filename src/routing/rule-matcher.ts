import { attributeTag, type Condition, type RoutingRule } from './rule-schema.js';

/** What a rule can look at for one instance. */
export interface RoutingSubject {
  callingAe: string;
  calledAe: string;
  sourceIp: string;
  /** Values of a DICOM attribute by tag (GGGGEEEE); undefined when absent. */
  attribute(tag: string): readonly string[] | undefined;
}

export interface RuleVerdict {
  rule: string;
  matched: boolean;
  /** One line per condition, saying what was compared and how it came out. */
  reasons: string[];
}

export interface RoutingDecision {
  /** The first rule that matched; undefined when none did (the instance is then ignored). */
  rule: RoutingRule | undefined;
  /** Every rule evaluated, in order, up to and including the matching one. */
  verdicts: RuleVerdict[];
}

/** First match wins. Pure: `rules explain` and the pipeline call the same function. */
export function routeInstance(rules: readonly RoutingRule[], subject: RoutingSubject): RoutingDecision {
  const verdicts: RuleVerdict[] = [];
  for (const rule of rules) {
    const verdict = evaluate(rule, subject);
    verdicts.push(verdict);
    if (verdict.matched) return { rule, verdicts };
  }
  return { rule: undefined, verdicts };
}

function evaluate(rule: RoutingRule, subject: RoutingSubject): RuleVerdict {
  const reasons: string[] = [];
  let matched = true;
  const check = (label: string, values: readonly string[] | undefined, condition: Condition) => {
    const [ok, why] = test(values, condition);
    reasons.push(`${ok ? 'yes' : 'no '} ${label} ${why}`);
    matched &&= ok;
  };
  const m = rule.match;
  if (m.callingAe !== undefined) check('calling AE', [subject.callingAe], m.callingAe);
  if (m.calledAe !== undefined) check('called AE', [subject.calledAe], m.calledAe);
  if (m.sourceIp !== undefined) check('source IP', [subject.sourceIp], m.sourceIp);
  for (const [key, condition] of Object.entries(m.attributes)) {
    const tag = attributeTag(key);
    check(key, tag === undefined ? undefined : subject.attribute(tag), condition);
  }
  if (reasons.length === 0) reasons.push('yes (no conditions: matches everything)');
  return { rule: rule.name, matched, reasons };
}

function test(values: readonly string[] | undefined, condition: Condition): [boolean, string] {
  const present = values?.filter((v) => v !== '') ?? [];
  const shown = present.length === 0 ? '(absent)' : present.join('\\');
  if (typeof condition === 'string') return [present.includes(condition), `${shown} equals ${condition}`];
  if (condition.equals !== undefined)
    return [present.includes(condition.equals), `${shown} equals ${condition.equals}`];
  if (condition.oneOf !== undefined) {
    const set = condition.oneOf;
    return [present.some((v) => set.includes(v)), `${shown} is one of ${set.join(', ')}`];
  }
  if (condition.regex !== undefined) {
    const re = new RegExp(condition.regex);
    return [present.some((v) => re.test(v)), `${shown} matches /${condition.regex}/`];
  }
  const wanted = condition.exists === true;
  return [present.length > 0 === wanted, `${shown} ${wanted ? 'exists' : 'is absent'}`];
}
