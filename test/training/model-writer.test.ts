import test from 'ava';
import { isValidUid } from '../../src/dicom/uids.js';
import { modelUidFromSha256 } from '../../src/training/model-writer.js';

test('the model UID is a valid 2.25 UID from a version-8 UUID of the weights hash, different for different weights', (t) => {
  const a = modelUidFromSha256('a'.repeat(64));
  const b = modelUidFromSha256(`b${'a'.repeat(63)}`);
  t.true(isValidUid(a) && isValidUid(b));
  t.not(a, b);
  t.is(a, modelUidFromSha256('a'.repeat(64)));
  const hex = BigInt(a.slice('2.25.'.length)).toString(16).padStart(32, '0');
  t.is(hex[12], '8');
  t.true(['8', '9', 'a', 'b'].includes(hex[16] ?? ''));
});
