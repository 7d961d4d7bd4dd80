import test from 'ava';
import { Admission } from '../../src/dimse/admission.js';

test('under the limits every connection is admitted and nothing is evicted', (t) => {
  const admission = new Admission({ perSource: 3, unassociated: 10 });
  for (const id of ['a', 'b', 'c']) t.deepEqual(admission.admit(id, '10.0.0.1'), { admitted: true, evict: [] });
  t.is(admission.size, 3);
});

test("over the per-source limit, the newcomer displaces that source's oldest idle socket, closing ones first", (t) => {
  const admission = new Admission({ perSource: 3, unassociated: 100 });
  admission.admit('idle-old', '10.0.0.1');
  admission.admit('idle-new', '10.0.0.1');
  admission.admit('rejected', '10.0.0.1');
  admission.setPhase('rejected', 'closing');
  const first = admission.admit('n1', '10.0.0.1');
  t.true(first.admitted);
  t.deepEqual(first.admitted ? first.evict.map((c) => c.id) : [], ['rejected']);
  const second = admission.admit('n2', '10.0.0.1');
  t.deepEqual(second.admitted ? second.evict.map((c) => c.id) : [], ['idle-old']);
  // Another source is not affected.
  t.deepEqual(admission.admit('other', '10.0.0.2'), { admitted: true, evict: [] });
});

test('associations are never displaced; a source whose sockets are all associations is refused, naming the key', (t) => {
  const admission = new Admission({ perSource: 2, unassociated: 100 });
  admission.admit('a', '10.0.0.1');
  admission.admit('b', '10.0.0.1');
  admission.setPhase('a', 'associated');
  admission.setPhase('b', 'associated');
  const decision = admission.admit('c', '10.0.0.1');
  t.false(decision.admitted);
  t.regex(decision.admitted ? '' : decision.reason, /dicom\.maxConnectionsPerSource=2/);
  admission.remove('a');
  t.true(admission.admit('c', '10.0.0.1').admitted);
});

test('at the cap on unassociated sockets, the oldest of them (any source) makes room; associations do not count', (t) => {
  const admission = new Admission({ perSource: 100, unassociated: 3 });
  admission.admit('assoc', '10.0.0.9');
  admission.setPhase('assoc', 'associated');
  admission.admit('x1', '10.0.0.1');
  admission.admit('x2', '10.0.0.2');
  admission.admit('x3', '10.0.0.3');
  const decision = admission.admit('real', '10.0.0.4');
  t.deepEqual(decision.admitted ? decision.evict.map((c) => c.id) : [], ['x1']);
  t.is(admission.size, 4);
});
