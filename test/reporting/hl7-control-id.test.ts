import test from 'ava';
import { GatewayError } from '../../src/errors.js';
import { MAX_CONTROL_ID_LENGTH, resultControlId } from '../../src/reporting/hl7-control-id.js';

const UID = '1.2.826.0.1.3680043.8.498.12345678901234567890123456789012345678901234';

test('is the same for the same study revision and RIS, so a retry resends the same ID', (t) => {
  t.is(resultControlId(UID, 0, 'RIS_MAIN'), resultControlId(UID, 0, 'RIS_MAIN'));
});

test('is at most 20 characters of [0-9A-Z]', (t) => {
  for (let revision = 0; revision < 50; revision++) {
    const id = resultControlId(`${UID}.${revision}`, revision, 'RIS');
    t.true(id.length <= MAX_CONTROL_ID_LENGTH);
    t.regex(id, /^CXR[0-9A-Z]{17}$/);
  }
});

test('differs by revision, by study and by RIS', (t) => {
  const ids = new Set([
    resultControlId(UID, 0, 'RIS'),
    resultControlId(UID, 1, 'RIS'),
    resultControlId(`${UID}1`, 0, 'RIS'),
    resultControlId(UID, 0, 'RIS2'),
    // The parts cannot run into each other: ('1.2', 34) is not ('1.23', 4).
    resultControlId('1.2', 34, 'R'),
    resultControlId('1.23', 4, 'R'),
  ]);
  t.is(ids.size, 6);
});

test('refuses inputs it cannot derive a stable ID from', (t) => {
  t.throws(() => resultControlId('', 0, 'RIS'), { instanceOf: GatewayError, message: /StudyInstanceUID/ });
  t.throws(() => resultControlId(UID, -1, 'RIS'), { instanceOf: GatewayError, message: /revision/ });
  t.throws(() => resultControlId(UID, 1.5, 'RIS'), { instanceOf: GatewayError, message: /revision/ });
  t.throws(() => resultControlId(UID, 0, ' '), { instanceOf: GatewayError, message: /RIS destination/ });
});
