import { clusterHealth } from './cluster-view.js';
import { diskHealth, listenerHealth, storeHealth, type HealthSource } from './health.js';

/**
 * /readyz: whether this node should be sent new DICOM associations, for a load balancer in front of receive nodes
 * (docs/cluster.md). Narrower than /healthz on purpose: parked or failing deliveries, a refused reload or a model
 * without a worker degrade /healthz on every node at once (they share one store), and a load balancer checking
 * /healthz would then take every receive node out and modalities would be refused everywhere. A node is not ready
 * when it cannot store what it receives (store, disk, listener) or when it is draining.
 */
export function receiveReadiness(h: HealthSource): { ready: boolean; problems: string[] } {
  const parts = [
    storeHealth(h.storeOk()),
    diskHealth(h.freeDiskBytes(), h.minFreeDiskBytes),
    listenerHealth(h.dicomListening()),
  ];
  const problems = parts.flatMap((p) => p.problems);
  if (h.cluster !== undefined) {
    try {
      problems.push(...clusterHealth(h.cluster()).nodeProblems);
    } catch {
      // The store does not answer: storeOk has already said so.
    }
  }
  return { ready: problems.length === 0, problems };
}
