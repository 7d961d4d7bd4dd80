import { nodeNameOf } from '../config/schema.js';
import { GatewayError } from '../errors.js';
import { AuditTrail } from '../store/audit-trail.js';
import { NodeRegistry, type LeasesHeld } from '../store/nodes.js';
import { parseStrict, UsageError } from './cli-args.js';
import { cliActor, openStore } from './store-access.js';

export const DRAIN_USAGE = `Usage: cxr-gateway drain [--node NAME] [--undo] [--wait] [--config FILE]

Drains a cluster node before maintenance: it claims no new job or delivery and finishes what it holds (the other
nodes take the rest). The node is this config's cluster.nodeName (else the host name) unless --node names another.
Prints what the node still holds; --wait waits (checking once a second) until it holds nothing, then it can be
stopped. --undo lets the node claim work again (a node that starts again is not draining). Recorded in the audit
trail as cli:<your OS user>.`;

const WAIT_POLL_MS = 1000;

export async function drainCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseStrict(argv, {
    config: { type: 'string', short: 'c' },
    node: { type: 'string' },
    undo: { type: 'boolean', default: false },
    wait: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  });
  if (values.help) {
    process.stdout.write(`${DRAIN_USAGE}\n`);
    return 0;
  }
  if (positionals.length > 0) throw new UsageError(`unexpected argument(s): ${positionals.join(' ')}`);
  if (values.undo && values.wait) throw new UsageError('--wait waits for a drain: it cannot go with --undo');
  const { config, store } = openStore(values.config, 'write');
  try {
    const node = values.node ?? nodeNameOf(config.cluster);
    const registry = new NodeRegistry(store.connection);
    const draining = !values.undo;
    const now = Date.now();
    if (!registry.setDraining(node, draining))
      throw new GatewayError('NODE_UNKNOWN', `no node named '${node}' has registered in the job store`);
    const actor = cliActor();
    new AuditTrail(store.connection).record(
      {
        category: 'admin',
        action: draining ? 'node.drain' : 'node.undrain',
        user: actor.user,
        role: actor.role,
        address: actor.address,
        target: node,
        outcome: 'success',
        after: { draining },
      },
      now,
    );
    const held = (): LeasesHeld => registry.leasesHeld(Date.now()).get(node) ?? { jobs: 0, deliveries: 0 };
    if (!draining) {
      process.stdout.write(`node '${node}' claims work again\n`);
      return 0;
    }
    let nowHeld = held();
    process.stdout.write(`node '${node}' is draining: it still holds ${describe(nowHeld)}\n`);
    if (!values.wait) return 0;
    while (nowHeld.jobs + nowHeld.deliveries > 0) {
      await new Promise((resolve) => setTimeout(resolve, WAIT_POLL_MS));
      nowHeld = held();
    }
    process.stdout.write(`node '${node}' holds nothing: it can be stopped\n`);
    return 0;
  } finally {
    store.close();
  }
}

function describe(held: LeasesHeld): string {
  return `${held.jobs} job(s) and ${held.deliveries} deliver${held.deliveries === 1 ? 'y' : 'ies'}`;
}
