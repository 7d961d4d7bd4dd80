import type { JobSummary, StudySummary } from '../store/job-store.js';

/** The human view of `cxr-gateway jobs`: one line per study, then one per job. */
export function formatJobsTable(studies: StudySummary[], jobs: JobSummary[]): string {
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
      `  #${j.id}  ${j.state.padEnd(9)}  ${j.studyInstanceUid}  rev ${j.revision}  ${j.instanceCount} instance(s)  attempts ${j.attempts}${j.lastError ? `  last error: ${j.lastError}` : ''}`,
    );
  }
  return `${lines.join('\n')}\n`;
}
