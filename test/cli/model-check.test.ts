import test from 'ava';
import { runCli } from '../helpers/gateway-process.js';
import { tinyModelDir } from '../helpers/tiny-densenet.js';

test('model check refuses a manifest still holding a template placeholder, naming the field', async (t) => {
  const result = await runCli(['model', 'check', tinyModelDir({ modelUid: 'FILL: 2.25.<decimal UUID>' })]);
  t.is(result.code, 1);
  t.regex(
    result.stderr,
    /manifest\.json: modelUid still holds the template's placeholder 'FILL: 2\.25\.<decimal UUID>'/,
  );
  t.is(result.stdout, '');
});
