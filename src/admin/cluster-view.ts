import type { LeasesHeld, NodeRow } from '../store/nodes.js';

// The cluster part of /healthz and /metrics (issue 20): every node the store knows, whether it is alive, and the
// leases it holds, as seen from this node. Another node being down does not make THIS node unhealthy (a load
// balancer would otherwise take every node out at once when one dies); it is listed in the cluster part's own
// problems for the admin. This node draining does make it unhealthy, on purpose: /healthz is what the load balancer
// checks, and a 503 is how a draining receive node stops getting new DICOM associations (docs/cluster.md).

export interface ClusterNodeView {
  name: string;
  roles: string[];
  /** ISO 8601. */
  startedAt: string;
  /** Seconds since the node's last heartbeat, by this node's clock. */
  heartbeatAgeSeconds: number;
  /** Its heartbeat is within cluster.leaseSeconds: past that its leases run out and other nodes take its work. */
  alive: boolean;
  draining: boolean;
  leases: LeasesHeld;
}

export interface ClusterView {
  /** This node: its config's name and roles, and whether the store marks it draining. */
  node: { name: string; roles: string[]; draining: boolean };
  leaseSeconds: number;
  nodes: ClusterNodeView[];
}

/** What the view is read from: the store's node registry (NodeRegistry). */
export interface ClusterSource {
  list(): NodeRow[];
  leasesHeld(now: number): Map<string, LeasesHeld>;
}

export function clusterView(
  source: ClusterSource,
  self: { name: string; roles: readonly string[] },
  leaseSeconds: number,
  now: number,
): ClusterView {
  const held = source.leasesHeld(now);
  const nodes = source.list().map((row) => {
    const ageMs = Math.max(0, now - row.heartbeatAt);
    return {
      name: row.name,
      roles: row.roles,
      startedAt: new Date(row.startedAt).toISOString(),
      heartbeatAgeSeconds: Math.floor(ageMs / 1000),
      alive: ageMs <= leaseSeconds * 1000,
      draining: row.draining,
      leases: held.get(row.name) ?? { jobs: 0, deliveries: 0 },
    };
  });
  const own = nodes.find((n) => n.name === self.name);
  return { node: { name: self.name, roles: [...self.roles], draining: own?.draining ?? false }, leaseSeconds, nodes };
}

/** A node's state for the cluster_nodes metric: down first (a dead node's drain no longer matters), then draining. */
export function nodeState(node: ClusterNodeView): 'alive' | 'down' | 'draining' {
  if (!node.alive) return 'down';
  return node.draining ? 'draining' : 'alive';
}

/**
 * The cluster part: `problems` inside it name the nodes that are down (their work is taken over once their leases
 * run out: restart them or remove them from the load balancer); `nodeProblems` is what degrades this node, only its
 * own drain.
 */
export function clusterHealth(view: ClusterView): {
  nodeProblems: string[];
  check: ClusterView & { problems: string[] };
} {
  const problems = view.nodes
    .filter((n) => !n.alive)
    .map(
      (n) =>
        `node '${n.name}' is down: no heartbeat for ${n.heartbeatAgeSeconds} s (cluster.leaseSeconds ${view.leaseSeconds}); ` +
        `the other nodes take over its jobs and deliveries`,
    );
  const nodeProblems = view.node.draining
    ? [
        `this node '${view.node.name}' is draining (cxr-gateway drain): it claims no new work and asks the load balancer ` +
          `for no new associations; cxr-gateway drain --undo ends it`,
      ]
    : [];
  return { nodeProblems, check: { ...view, problems } };
}
