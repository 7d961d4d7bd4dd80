import test from 'ava';
import { checkExplainTarget } from '../../src/config/explain-target.js';
import { GatewayError } from '../../src/errors.js';

const models = [['chest', ['COVID-19', 'pneumonia', 'normal']] as const, ['other', ['pneumonia', 'effusion']] as const];

test("'predicted' and 'all' fit every model", (t) => {
  t.notThrows(() => checkExplainTarget('predicted', models));
  t.notThrows(() => checkExplainTarget('all', models));
});

test('a class every model has is accepted', (t) => {
  t.notThrows(() => checkExplainTarget('pneumonia', models));
});

test('a class one model lacks is refused with EXPLAIN_TARGET_UNKNOWN, naming that model and its classes', (t) => {
  const error = t.throws(() => checkExplainTarget('normal', models), {
    instanceOf: GatewayError,
    code: 'EXPLAIN_TARGET_UNKNOWN',
  });
  t.regex(error?.message ?? '', /model 'other'/);
  t.regex(error?.message ?? '', /pneumonia, effusion/);
});

test('no models installed: nothing to check against, so nothing is refused', (t) => {
  t.notThrows(() => checkExplainTarget('Cardiomegaly', []));
});
