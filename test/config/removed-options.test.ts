// Specification: an option that was removed is refused with a sentence that says so, not taken for a misspelling.
import test from 'ava';
import { parseConfigText } from '../../src/config/load-config.js';
import { GatewayError } from '../../src/errors.js';

test('inference.maxWaitMs (removed: nothing ever read it) is refused with a sentence that says to delete it', (t) => {
  const error = t.throws(() => parseConfigText('inference:\n  maxBatch: 4\n  maxWaitMs: 50\n', 'site.yaml'), { instanceOf: GatewayError });
  t.is((error as GatewayError).code, 'CONFIG_INVALID');
  t.regex(error?.message ?? '', /site\.yaml: inference\.maxWaitMs: was removed: .*delete the line/);
  t.notRegex(error?.message ?? '', /misspelt/);
  t.is(parseConfigText('inference:\n  maxBatch: 4\n', 'site.yaml').inference.maxBatch, 4);
});
