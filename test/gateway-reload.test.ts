import test from 'ava';
import { configSchema } from '../src/config/schema.js';
import { destinationChanges } from '../src/gateway.js';

// What a reload does to the running destinations, by name: unchanged ones keep their instance (their kept-open
// MLLP connection, their sends in flight); new and changed ones are created; changed and removed ones drain.

const destinations = (raw: unknown) => configSchema.parse({ destinations: raw, rules: [] }).destinations;

const pacs = { type: 'dicom', name: 'pacs', host: '10.0.0.1', port: 104, aeTitle: 'PACS' };
const ris = { type: 'mllp', name: 'ris', host: '10.0.0.2', port: 2575 };

test('adding a destination creates only that one', (t) => {
  const plan = destinationChanges(destinations({ pacs: [pacs], ris: [] }), destinations({ pacs: [pacs], ris: [ris] }));
  t.deepEqual(plan.addedNames, ['ris']);
  t.deepEqual(plan.retired, []);
  t.deepEqual(plan.removedNames, []);
});

test('a changed destination is replaced (created anew, the old one drained); a removed one drained', (t) => {
  const plan = destinationChanges(
    destinations({ pacs: [pacs], ris: [ris] }),
    destinations({ pacs: [{ ...pacs, port: 11112 }], ris: [] }),
  );
  t.deepEqual(plan.addedNames, ['pacs']);
  t.deepEqual(plan.retired.sort(), ['pacs', 'ris']);
  t.deepEqual(plan.removedNames, ['ris']);
  t.is(plan.added.pacs[0]?.type === 'dicom' ? plan.added.pacs[0].port : 0, 11112);
});

test('the same configuration changes nothing; a name moving from PACS to RIS is a change', (t) => {
  const same = destinationChanges(
    destinations({ pacs: [pacs], ris: [ris] }),
    destinations({ pacs: [pacs], ris: [ris] }),
  );
  t.deepEqual([same.addedNames, same.retired, same.removedNames], [[], [], []]);
  const moved = destinationChanges(
    destinations({ pacs: [{ type: 'folder', name: 'out', path: '/a' }], ris: [] }),
    destinations({ pacs: [], ris: [{ type: 'folder', name: 'out', path: '/a' }] }),
  );
  t.deepEqual(moved.addedNames, ['out']);
  t.deepEqual(moved.retired, ['out']);
});
