import test from 'ava';
import { pacsDestinationSchema } from '../../src/config/schema.js';

const destinations = [
  { type: 'folder', name: 'f', path: '/srv/out' },
  { type: 'dicom', name: 'd', host: '127.0.0.1', port: 104, aeTitle: 'PACS' },
  { type: 'dicomweb', name: 'w', baseUrl: 'http://127.0.0.1:8042/dicom-web' },
] as const;

test('rejectSuperseded: every PACS destination type takes it, default true, and refuses a non-boolean', (t) => {
  for (const d of destinations) {
    t.is(pacsDestinationSchema.parse(d).rejectSuperseded, true, d.type);
    t.is(pacsDestinationSchema.parse({ ...d, rejectSuperseded: false }).rejectSuperseded, false, d.type);
    t.false(pacsDestinationSchema.safeParse({ ...d, rejectSuperseded: 'no' }).success, d.type);
  }
});
