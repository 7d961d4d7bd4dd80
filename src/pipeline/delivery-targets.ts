import { readFile } from 'node:fs/promises';
import type { Destinations } from '../export/create-destinations.js';
import type { DeliveryPayload, DeliveryTarget } from './delivery-target.js';

/**
 * The configured destinations as the pipeline addresses them: by name, with payloads as stored in the
 * deliveries table (file paths), so that a delivery resumed after a restart needs nothing from memory.
 */
export function deliveryTargets(destinations: Destinations): Map<string, DeliveryTarget> {
  const targets = new Map<string, DeliveryTarget>();
  for (const [name, destination] of destinations.pacs) {
    targets.set(name, {
      name,
      kind: 'pacs',
      deliver: (payload: DeliveryPayload) =>
        payload.kind === 'pacs' ? destination.deliver(payload.files.map((path) => ({ path }))) : Promise.resolve(mismatch(name)),
      stop: () => destination.stop(),
    });
  }
  for (const [name, destination] of destinations.ris) {
    targets.set(name, {
      name,
      kind: 'ris',
      deliver: async (payload: DeliveryPayload) => {
        if (payload.kind !== 'ris') return mismatch(name);
        const message = await readFile(payload.file, 'utf8');
        return destination.deliver([{ controlId: payload.controlId, message }]);
      },
      stop: () => destination.stop(),
    });
  }
  return targets;
}

function mismatch(name: string) {
  return { kind: 'parked' as const, reason: `destination '${name}' got a payload of the other kind; the job was routed under an older configuration` };
}
