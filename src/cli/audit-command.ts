import { AuditTrail, type AuditRowOut } from '../store/audit-trail.js';
import { integer, isoTime, parseStrict, shortText, UsageError } from './cli-args.js';
import { pageFooter } from './jobs-table.js';
import { withStore } from './store-access.js';

export const AUDIT_USAGE = `Usage: cxr-gateway audit [--since ISO] [--until ISO] [--action A] [--user U] [--category C]
                         [--limit N] [--offset N] [--json] [--config FILE]

The audit trail of admin actions (console and command line), newest first: when, category, action, who (role) from
where, on what, outcome, and what changed. --limit defaults to 50 (at most 500). --json prints every field, with
before/after as JSON.`;

function parseJson(text: string | null): unknown {
  if (text === null) return null;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

function auditLine(e: AuditRowOut): string {
  const who = `${e.user ?? '-'}${e.role ? ` (${e.role})` : ''}${e.address ? ` from ${e.address}` : ''}`;
  const change = e.before !== null || e.after !== null ? `  ${e.before ?? '-'} -> ${e.after ?? '-'}` : '';
  return `${new Date(e.at).toISOString()}  ${e.category}  ${e.action}  ${who}  ${e.target ?? '-'}  ${e.outcome}${shortText(change, 160)}${e.detail ? `  ${shortText(e.detail, 100)}` : ''}`;
}

export function auditCommand(argv: string[]): number {
  const { values, positionals } = parseStrict(argv, {
    config: { type: 'string', short: 'c' },
    since: { type: 'string' },
    until: { type: 'string' },
    action: { type: 'string' },
    user: { type: 'string' },
    category: { type: 'string' },
    limit: { type: 'string' },
    offset: { type: 'string' },
    json: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  });
  if (values.help) {
    process.stdout.write(`${AUDIT_USAGE}\n`);
    return 0;
  }
  if (positionals.length > 0) throw new UsageError(`audit takes no arguments (given: ${positionals.join(' ')})`);
  const filter = {
    since: isoTime('since', values.since),
    until: isoTime('until', values.until),
    action: values.action,
    user: values.user,
    category: values.category,
    limit: integer('limit', values.limit, 1, 500) ?? 50,
    offset: integer('offset', values.offset, 0, Number.MAX_SAFE_INTEGER) ?? 0,
  };
  return withStore(values.config, 'read', ({ store }) => {
    const page = new AuditTrail(store.connection).list(filter);
    if (values.json) {
      const items = page.items.map((e) => ({ ...e, before: parseJson(e.before), after: parseJson(e.after) }));
      process.stdout.write(`${JSON.stringify({ ...page, items }, null, 2)}\n`);
    } else
      process.stdout.write(
        `${[...page.items.map(auditLine), pageFooter(page.items.length, page, 'audit entry(ies)')].join('\n')}\n`,
      );
    return 0;
  });
}
