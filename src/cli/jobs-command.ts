import { JOB_STATES } from '../store/job-store.js';
import { AuditTrail } from '../store/audit-trail.js';
import { ConsoleStore } from '../store/console-store.js';
import { PipelineStore } from '../store/pipeline-store.js';
import { integer, isoTime, oneOf, parseStrict, UsageError } from './cli-args.js';
import { formatJobsTable, jobsListing, type JobLine } from './jobs-table.js';
import { withStore } from './store-access.js';

export const JOBS_USAGE = `Usage: cxr-gateway jobs [--state S] [--destination D] [--ae AE] [--accession A] [--study UID]
                        [--since ISO] [--until ISO] [--limit N] [--offset N] [--json] [--config FILE]

Lists jobs from the job store, newest first, one line each (works while the daemon runs): id, state, study UID,
revision, rule, its deliveries, and why it waits or failed; under a job, each parked delivery with its id (release
or discard it with 'cxr-gateway deliveries').
  --state        ${JOB_STATES.join(', ')}
  --destination  jobs with a delivery to this destination
  --since/until  when the job was created (ISO, e.g. 2026-12-06 or 2026-12-06T08:00Z)
  --limit        50 by default, at most 500; --offset pages on
  --json         { total, offset, limit, studies, jobs, deliveries } with the whole reasons: every matching job
                 (oldest first, as scripts have read it) unless --limit is given; studies are those of the jobs
                 listed, or every study (also those still receiving) when no filter is given`;

export function jobsCommand(argv: string[]): number {
  const { values, positionals } = parseStrict(argv, {
    config: { type: 'string', short: 'c' },
    state: { type: 'string' },
    destination: { type: 'string' },
    ae: { type: 'string' },
    accession: { type: 'string' },
    study: { type: 'string' },
    since: { type: 'string' },
    until: { type: 'string' },
    limit: { type: 'string' },
    offset: { type: 'string' },
    json: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  });
  if (values.help) {
    process.stdout.write(`${JOBS_USAGE}\n`);
    return 0;
  }
  if (positionals.length > 0) throw new UsageError(`jobs takes no arguments (given: ${positionals.join(' ')})`);
  const filter = {
    state: oneOf('state', values.state, JOB_STATES),
    destination: values.destination,
    ae: values.ae,
    accession: values.accession,
    studyInstanceUid: values.study,
    since: isoTime('since', values.since),
    until: isoTime('until', values.until),
    // Scripts read `jobs --json` whole; a person reads the newest page.
    limit: integer('limit', values.limit, 1, 500) ?? (values.json ? Number.MAX_SAFE_INTEGER : 50),
    offset: integer('offset', values.offset, 0, Number.MAX_SAFE_INTEGER) ?? 0,
  };
  return withStore(values.config, 'read', ({ store }) => {
    const page = new ConsoleStore(store.connection, new AuditTrail(store.connection)).jobs(filter);
    const summaries = new Map(store.listJobs().map((j) => [j.id, j]));
    const jobs: JobLine[] = page.items.flatMap((row) => {
      const summary = summaries.get(row.id);
      return summary === undefined
        ? []
        : [{ ...summary, callingAe: row.callingAe, accessionNumber: row.accessionNumber }];
    });
    const pipeline = new PipelineStore(store.connection);
    const deliveries = jobs.flatMap((j) => pipeline.deliveries(j.id));
    const paging = { total: page.total, offset: page.offset, limit: Math.min(page.limit, page.total) };
    if (values.json) {
      const filtered = Object.entries(filter).some(([k, v]) => v !== undefined && k !== 'limit' && k !== 'offset');
      const uids = new Set(jobs.map((j) => j.studyInstanceUid));
      const studies = store.listStudies().filter((s) => !filtered || uids.has(s.studyInstanceUid));
      const oldestFirst = [...jobs].sort((a, b) => a.id - b.id);
      const ordered = [...deliveries].sort((a, b) => a.id - b.id);
      process.stdout.write(`${JSON.stringify(jobsListing(studies, oldestFirst, ordered, paging), null, 2)}\n`);
    } else process.stdout.write(formatJobsTable(jobs, deliveries, paging));
    return 0;
  });
}
