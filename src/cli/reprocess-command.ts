import { AuditTrail } from '../store/audit-trail.js';
import { ConsoleStore } from '../store/console-store.js';
import { parseStrict, UsageError } from './cli-args.js';
import { cliActor, withStore } from './store-access.js';

export const REPROCESS_USAGE = `Usage: cxr-gateway reprocess STUDY_UID [--config FILE]

Queues a study again as a new revision (after a model or rule change): the running daemon routes it with its
current rules and delivers the new results after the previous revision's. Refused while the study is still
receiving or a job of it is running, and once retention has purged its images. Recorded in the audit trail.`;

export function reprocessCommand(argv: string[]): number {
  const { values, positionals } = parseStrict(argv, {
    config: { type: 'string', short: 'c' },
    help: { type: 'boolean', short: 'h', default: false },
  });
  if (values.help) {
    process.stdout.write(`${REPROCESS_USAGE}\n`);
    return 0;
  }
  const [uid, ...extra] = positionals;
  if (uid === undefined || extra.length > 0) throw new UsageError('reprocess takes exactly one Study Instance UID');
  return withStore(values.config, 'write', ({ store }) => {
    const consoleStore = new ConsoleStore(store.connection, new AuditTrail(store.connection));
    const { jobId, revision } = consoleStore.reprocessStudy(uid, cliActor(), Date.now());
    process.stdout.write(
      `study ${uid}: revision ${revision} queued as job #${jobId}; the running daemon processes it with its current rules\n`,
    );
    return 0;
  });
}
