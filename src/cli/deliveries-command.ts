import { AuditTrail } from '../store/audit-trail.js';
import type { DeliveryRowOut } from '../store/console-queries.js';
import { ConsoleStore } from '../store/console-store.js';
import { DELIVERY_STATES, type DeliveryKind } from '../store/pipeline-store.js';
import { GatewayError } from '../errors.js';
import { integer, isoTime, oneOf, parseStrict, shortText, shortUid, UsageError } from './cli-args.js';
import { pageFooter } from './jobs-table.js';
import { cliActor, withStore } from './store-access.js';

const KINDS: readonly DeliveryKind[] = ['pacs', 'ris'];

export const DELIVERIES_USAGE = `Usage: cxr-gateway deliveries [--state S] [--destination D] [--kind pacs|ris] [--study UID]
                              [--limit N] [--offset N] [--json] [--config FILE]
       cxr-gateway deliveries release ID [--config FILE]
       cxr-gateway deliveries release --destination D [--config FILE]
       cxr-gateway deliveries discard ID --reason TEXT [--config FILE]

Lists deliveries to PACS and RIS, newest first (--state is one of ${DELIVERY_STATES.join(', ')}), or acts on parked
ones: 'release' makes a parked delivery due now (a PACS delivery takes the RIS reports it held back with it), or
every parked delivery of one destination; 'discard' gives one up for good, with the reason (1 to 500 characters)
kept on the job and in the audit trail. Works on the job store while the daemon runs; the daemon sends released
deliveries on its next pass. Each action is recorded in the audit trail as cli:<your OS user>.`;

function deliveryLine(d: DeliveryRowOut): string {
  const when =
    d.state === 'pending' ? `next ${new Date(d.nextAttemptAt).toISOString()}` : new Date(d.updatedAt).toISOString();
  return [
    `#${d.id}`.padEnd(6),
    d.kind.padEnd(4),
    d.destination.padEnd(14),
    d.state.padEnd(9),
    `job #${d.jobId}`.padEnd(9),
    `${shortUid(d.studyInstanceUid)} rev ${d.revision}`.padEnd(30),
    `attempts ${d.attempts}`.padEnd(11),
    when,
    d.lastError ? `  ${shortText(d.lastError, 100)}` : '',
  ]
    .join('  ')
    .trimEnd();
}

/** Without the stored payload (file paths): what a script needs is the state and why. */
function jsonRow(d: DeliveryRowOut): Omit<DeliveryRowOut, 'payload'> {
  const { payload: _payload, ...rest } = d;
  return rest;
}

export function deliveriesCommand(argv: string[]): number {
  const { values, positionals } = parseStrict(argv, {
    config: { type: 'string', short: 'c' },
    state: { type: 'string' },
    destination: { type: 'string' },
    kind: { type: 'string' },
    study: { type: 'string' },
    limit: { type: 'string' },
    offset: { type: 'string' },
    since: { type: 'string' },
    reason: { type: 'string' },
    json: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  });
  if (values.help) {
    process.stdout.write(`${DELIVERIES_USAGE}\n`);
    return 0;
  }
  const [action, id, ...extra] = positionals;
  if (extra.length > 0) throw new UsageError(`unexpected argument(s): ${extra.join(' ')}`);
  if (action === undefined) {
    const filter = {
      state: oneOf('state', values.state, DELIVERY_STATES),
      destination: values.destination,
      kind: oneOf('kind', values.kind, KINDS),
      studyInstanceUid: values.study,
      since: isoTime('since', values.since),
      limit: integer('limit', values.limit, 1, 500) ?? 50,
      offset: integer('offset', values.offset, 0, Number.MAX_SAFE_INTEGER) ?? 0,
    };
    return withStore(values.config, 'read', ({ store }) => {
      const page = new ConsoleStore(store.connection, new AuditTrail(store.connection)).deliveries(filter);
      if (values.json)
        process.stdout.write(`${JSON.stringify({ ...page, items: page.items.map(jsonRow) }, null, 2)}\n`);
      else
        process.stdout.write(
          `${[...page.items.map(deliveryLine), pageFooter(page.items.length, page, 'delivery(ies)')].join('\n')}\n`,
        );
      return 0;
    });
  }
  if (action !== 'release' && action !== 'discard')
    throw new UsageError(`unknown deliveries action '${action}': use release or discard`);
  const deliveryId = id === undefined ? undefined : Number(id);
  if (id !== undefined && (!/^\d+$/.test(id) || !Number.isSafeInteger(deliveryId)))
    throw new UsageError(`'${id}' is not a delivery id (a whole number, as 'cxr-gateway deliveries' shows)`);
  for (const flag of ['state', 'kind', 'study', 'limit', 'offset', 'since'] as const)
    if (values[flag] !== undefined) throw new UsageError(`--${flag} is for listing, not for ${action}`);

  if (action === 'release') {
    if (values.reason !== undefined) throw new UsageError('--reason is for discard');
    if ((deliveryId === undefined) === (values.destination === undefined))
      throw new UsageError('release takes a delivery ID or --destination NAME (one of them)');
    return withStore(values.config, 'write', ({ store, config }) => {
      const consoleStore = new ConsoleStore(store.connection, new AuditTrail(store.connection));
      let released: DeliveryRowOut[];
      if (deliveryId !== undefined) released = consoleStore.releaseDelivery(deliveryId, cliActor(), Date.now());
      else {
        const destination = values.destination ?? '';
        const configured = [...config.destinations.pacs, ...config.destinations.ris].some(
          (d) => d.name === destination,
        );
        const known = configured || consoleStore.deliveries({ destination, offset: 0, limit: 1 }).total > 0;
        if (!known)
          throw new GatewayError(
            'DELIVERY_NOT_FOUND',
            `no destination '${destination}' is configured or has deliveries in the job store`,
          );
        released = consoleStore.releaseDestination(destination, cliActor(), Date.now());
        if (released.length === 0) {
          process.stdout.write(
            `nothing parked for destination '${destination}' (reports held back by a parked PACS delivery go with it)\n`,
          );
          return 0;
        }
      }
      for (const d of released)
        process.stdout.write(`released delivery ${d.id} (${d.kind} to '${d.destination}', job #${d.jobId}): due now\n`);
      return 0;
    });
  }
  if (deliveryId === undefined) throw new UsageError('discard needs the delivery ID');
  if (values.destination !== undefined) throw new UsageError('discard takes one delivery ID, not --destination');
  if (values.reason === undefined) throw new UsageError('discard needs --reason TEXT: say why it will never be sent');
  const reason = values.reason;
  return withStore(values.config, 'write', ({ store }) => {
    const consoleStore = new ConsoleStore(store.connection, new AuditTrail(store.connection));
    const d = consoleStore.discardDelivery(deliveryId, reason, cliActor(), Date.now());
    process.stdout.write(
      `discarded delivery ${d.id} (${d.kind} to '${d.destination}', job #${d.jobId}): ${d.lastError ?? ''}\n`,
    );
    return 0;
  });
}
