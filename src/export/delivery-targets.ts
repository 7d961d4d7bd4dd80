import { readFile } from 'node:fs/promises';
import type { Destination, DicomObject, Hl7Message } from './destination.js';
import type { Destinations } from './create-destinations.js';
import type { DeliveryOutcome, DeliveryPayload, DeliveryTarget } from './delivery-target.js';

/**
 * The configured destinations as the pipeline addresses them: by name, with payloads as stored in the
 * deliveries table (file paths), so that a delivery resumed after a restart needs nothing from memory.
 */
export function deliveryTargets(destinations: Destinations): Map<string, DeliveryTarget> {
  const targets = new Map<string, DeliveryTarget>();
  for (const [name, destination] of destinations.pacs) targets.set(name, pacsTarget(name, destination));
  for (const [name, destination] of destinations.ris) targets.set(name, risTarget(name, destination));
  return targets;
}

export function pacsTarget(name: string, destination: Destination<DicomObject>): DeliveryTarget {
  return tracked(name, 'pacs', destination, (payload, signal) =>
    payload.kind === 'pacs'
      ? destination.deliver(
          payload.files.map((path) => ({ path })),
          signal,
        )
      : Promise.resolve(mismatch(name)),
  );
}

export function risTarget(name: string, destination: Destination<Hl7Message>): DeliveryTarget {
  return tracked(name, 'ris', destination, async (payload, signal) => {
    if (payload.kind !== 'ris') return mismatch(name);
    const message = await readFile(payload.file, 'utf8');
    return destination.deliver([{ controlId: payload.controlId, message }], signal);
  });
}

/**
 * Counts the sends in flight, so that a reload can retire a destination without cutting one off: drain() waits
 * for them, then stops the destination; a delivery that comes in meanwhile still goes out.
 */
function tracked(
  name: string,
  kind: 'pacs' | 'ris',
  destination: { stop(): Promise<void> },
  send: (payload: DeliveryPayload, signal: AbortSignal | undefined) => Promise<DeliveryOutcome>,
): DeliveryTarget {
  const inFlight = new Set<Promise<unknown>>();
  return {
    name,
    kind,
    deliver(payload: DeliveryPayload, signal?: AbortSignal): Promise<DeliveryOutcome> {
      const sending = send(payload, signal);
      const settled = sending.then(
        () => undefined,
        () => undefined,
      );
      inFlight.add(settled);
      void settled.then(() => inFlight.delete(settled));
      return sending;
    },
    stop: () => destination.stop(),
    async drain(): Promise<void> {
      while (inFlight.size > 0) await Promise.all([...inFlight]);
      await destination.stop();
    },
  };
}

function mismatch(name: string): DeliveryOutcome {
  return {
    kind: 'parked',
    cause: 'payload-mismatch',
    reason: `destination '${name}' got a payload of the other kind; the job was routed under an older configuration`,
  };
}
