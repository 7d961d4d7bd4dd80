import test from 'ava';
import { z } from 'zod';
import { GatewayError } from '../../src/errors.js';
import { STORED_JSON_INVALID, parseStored } from '../../src/store/stored-json.js';

const schema = z.object({ files: z.array(z.string()) });
const where = { column: 'deliveries.payload', row: 'delivery 7' };

test('a stored value that fits its schema is returned as parsed', (t) => {
  t.deepEqual(parseStored(schema, '{"files":["a.dcm"]}', where), { files: ['a.dcm'] });
});

test('text that is not JSON fails with STORED_JSON_INVALID naming the column and row, without quoting the text', (t) => {
  const error = t.throws(() => parseStored(schema, '{"files":["ACC-SECRET-123"', where), { instanceOf: GatewayError });
  t.is(error.code, STORED_JSON_INVALID);
  t.regex(error.message, /deliveries\.payload of delivery 7/);
  t.regex(error.message, /not valid JSON/);
  t.notRegex(error.message, /ACC-SECRET-123/);
});

test('JSON of the wrong shape fails with the path of what differs', (t) => {
  const error = t.throws(() => parseStored(schema, '{"files":[1]}', where), { instanceOf: GatewayError });
  t.is(error.code, STORED_JSON_INVALID);
  t.regex(error.message, /shape is wrong \(files\.0: /);
});

test('a NULL column fails too, rather than reading as nothing', (t) => {
  const error = t.throws(() => parseStored(schema, null, where), { instanceOf: GatewayError });
  t.is(error.code, STORED_JSON_INVALID);
  t.regex(error.message, /empty \(NULL\)/);
});
