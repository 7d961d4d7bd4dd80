import { codeOfReason, type ErrorCode } from '../errors.js';
import type { JobSummary, StudySummary } from '../store/job-store.js';
import type { Delivery } from '../store/pipeline-store.js';

/**
 * The machine view of `cxr-gateway jobs --json`. Each job's lastError is stored as 'CODE: sentence'; `code` repeats
 * that catalogue code (src/errors.ts, docs/errors.md) so that scripts match on it without parsing prose.
 */
export function jobsListing(
  studies: StudySummary[],
  jobs: JobSummary[],
  deliveries: Delivery[],
): { studies: StudySummary[]; jobs: Array<JobSummary & { code: ErrorCode | null }>; deliveries: Delivery[] } {
  return { studies, jobs: jobs.map((j) => ({ ...j, code: codeOfReason(j.lastError) ?? null })), deliveries };
}

/** The human view of `cxr-gateway jobs`: one line per study, then one per job. */
export function formatJobsTable(studies: StudySummary[], jobs: JobSummary[], deliveries: Delivery[]): string {
  const lines: string[] = [];
  lines.push(`STUDIES (${studies.length})`);
  for (const s of studies) {
    lines.push(
      `  ${s.studyInstanceUid}  ${s.state.padEnd(9)}  rev ${s.revision}  ${String(s.instanceCount).padStart(4)} instance(s)  from ${s.callingAe}  last ${new Date(s.lastReceivedAt).toISOString()}`,
    );
  }
  lines.push(`JOBS (${jobs.length})`);
  for (const j of jobs) {
    lines.push(
      `  #${j.id}  ${j.state.padEnd(10)}  ${j.studyInstanceUid}  rev ${j.revision}  ${j.instanceCount} instance(s)${j.rule ? `  rule ${j.rule} (${j.priority})` : ''}${j.attempts > 0 ? `  attempts ${j.attempts}` : ''}${j.lastError ? `  reason: ${j.lastError}` : ''}${j.state === 'processing' && j.nextAttemptAt !== null ? `  next try ${new Date(j.nextAttemptAt).toISOString()}` : ''}`,
    );
    for (const d of deliveries.filter((x) => x.jobId === j.id)) {
      lines.push(
        `      ${d.kind} ${d.destination}: ${d.state}  attempts ${d.attempts}${d.state === 'pending' ? `  next ${new Date(d.nextAttemptAt).toISOString()}` : ''}${d.lastError ? `  last error: ${d.lastError}` : ''}`,
      );
    }
  }
  return `${lines.join('\n')}\n`;
}
