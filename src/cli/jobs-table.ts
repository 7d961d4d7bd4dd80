import { codeOfReason, type ErrorCode } from '../errors.js';
import type { JobSummary, StudySummary } from '../store/job-store.js';
import type { Delivery } from '../store/pipeline-store.js';
import { shortText, shortUid } from './cli-args.js';

/** A listed job with what the console store adds (the sending AE, the accession number). */
export type JobLine = JobSummary & { callingAe?: string; accessionNumber?: string | null };

export interface JobsPage {
  total: number;
  offset: number;
  limit: number;
}

/**
 * The machine view of `cxr-gateway jobs --json`. Each job's lastError is stored as 'CODE: sentence'; `code` repeats
 * that catalogue code (src/errors.ts, docs/errors.md) so that scripts match on it without parsing prose. With a
 * page, `total` says how many jobs matched the filter.
 */
export function jobsListing(
  studies: StudySummary[],
  jobs: JobLine[],
  deliveries: Delivery[],
  page?: JobsPage,
): {
  studies: StudySummary[];
  jobs: Array<JobLine & { code: ErrorCode | null }>;
  deliveries: Delivery[];
} & Partial<JobsPage> {
  return {
    ...(page ?? {}),
    studies,
    jobs: jobs.map((j) => ({ ...j, code: codeOfReason(j.lastError) ?? null })),
    deliveries,
  };
}

/** `1 delivered, 1 parked` for a job's deliveries; '-' when it has none. */
function deliveriesSummary(deliveries: Delivery[]): string {
  if (deliveries.length === 0) return '-';
  const counts = new Map<string, number>();
  for (const d of deliveries) counts.set(d.state, (counts.get(d.state) ?? 0) + 1);
  return [...counts].map(([state, n]) => `${n} ${state}`).join(', ');
}

/**
 * The human view of `cxr-gateway jobs`: one line per job (id, state, study UID shortened, revision, rule, its
 * deliveries, the node working on it, why it waits or failed), then under a job only its parked deliveries (with the id to release or
 * discard), then `N of TOTAL`. Long reasons are shortened: `--json` has them whole.
 */
export function formatJobsTable(jobs: JobLine[], deliveries: Delivery[], page?: JobsPage): string {
  const lines: string[] = [];
  for (const j of jobs) {
    const own = deliveries.filter((d) => d.jobId === j.id);
    const cells = [
      `#${j.id}`.padEnd(6),
      j.state.padEnd(10),
      shortUid(j.studyInstanceUid).padEnd(24),
      `rev ${j.revision}`,
      (j.rule ?? '-').padEnd(12),
      deliveriesSummary(own).padEnd(12),
    ];
    let line = cells.join('  ');
    // Which node works on the job or its deliveries now (their leases; issue 20): none once it is settled.
    const holders = new Set([j.leaseOwner, ...own.map((d) => d.leaseOwner)].filter((h) => h !== null));
    if (holders.size > 0) line += `  node ${[...holders].join(', ')}`;
    if (j.attempts > 1) line += `  attempts ${j.attempts}`;
    if (j.lastError) line += `  reason: ${shortText(j.lastError, 100)}`;
    if (j.state === 'processing' && j.nextAttemptAt !== null)
      line += `  next try ${new Date(j.nextAttemptAt).toISOString()}`;
    lines.push(line.trimEnd());
    for (const d of own.filter((x) => x.state === 'parked'))
      lines.push(
        `        ${d.kind} ${d.destination}: parked  delivery ${d.id}  attempts ${d.attempts}${d.lastError ? `  last error: ${shortText(d.lastError, 110)}` : ''}`,
      );
  }
  if (page !== undefined) lines.push(pageFooter(jobs.length, page, 'job(s)'));
  return `${lines.join('\n')}\n`;
}

/** `N of TOTAL` under a listing, saying where it starts when paged and how to see more. */
export function pageFooter(shown: number, page: JobsPage, noun: string): string {
  const from = page.offset > 0 ? ` from offset ${page.offset}` : '';
  const more = page.offset + shown < page.total ? ` (more with --offset ${page.offset + shown})` : '';
  return `${shown} of ${page.total} ${noun}${from}${more}`;
}
