import test from 'ava';
import type { DeliveryOutcome, Destination, DicomObject } from '../../src/export/destination.js';
import { pacsTarget } from '../../src/export/delivery-targets.js';

// A destination retired by a reload drains: the sends in flight finish with their real outcome, then it stops.

function slowDestination() {
  const events: string[] = [];
  let release: (outcome: DeliveryOutcome) => void = () => undefined;
  const destination: Destination<DicomObject> = {
    name: 'pacs',
    start: async () => undefined,
    stop: async () => {
      events.push('stopped');
    },
    deliver: () =>
      new Promise<DeliveryOutcome>((resolve) => {
        events.push('sending');
        release = (outcome) => {
          events.push('answered');
          resolve(outcome);
        };
      }),
  };
  return { destination, events, release: (o: DeliveryOutcome) => release(o) };
}

test('drain waits for the send in flight, which keeps its outcome, then stops the destination', async (t) => {
  const slow = slowDestination();
  const target = pacsTarget('pacs', slow.destination);
  const sending = target.deliver({ kind: 'pacs', files: ['/a.dcm'] });
  let drained = false;
  const draining = target.drain?.().then(() => (drained = true));
  await new Promise((r) => setImmediate(r));
  t.false(drained);
  t.deepEqual(slow.events, ['sending']);
  slow.release({ kind: 'delivered' });
  t.deepEqual(await sending, { kind: 'delivered' });
  await draining;
  t.true(drained);
  t.deepEqual(slow.events, ['sending', 'answered', 'stopped']);
});

test('a RIS payload at a PACS target parks with the payload-mismatch cause', async (t) => {
  const target = pacsTarget('pacs', slowDestination().destination);
  t.like(await target.deliver({ kind: 'ris', file: '/x.hl7', controlId: 'C' }), {
    kind: 'parked',
    cause: 'payload-mismatch',
  });
});
