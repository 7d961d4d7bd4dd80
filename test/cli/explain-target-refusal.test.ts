import test from 'ava';
import { runCli, writeGatewayConfig } from '../helpers/gateway-process.js';
import { tinyModelDir } from '../helpers/tiny-densenet.js';

// The real daemon and check-config refuse an explain.target that names a class the model lacks, by its code.

async function setup(target: string) {
  return writeGatewayConfig({
    models: { demo: tinyModelDir() },
    inference: { backend: 'wasm', workers: 1 },
    explain: { target },
  });
}

interface LogLine {
  message?: string;
  code?: string;
}

const logLines = (text: string): LogLine[] =>
  text.split('\n').flatMap((line) => {
    try {
      return [JSON.parse(line) as LogLine];
    } catch {
      return [];
    }
  });

test('the daemon refuses to start, exit 1, logging could not start with EXPLAIN_TARGET_UNKNOWN', async (t) => {
  const { configPath } = await setup('Cardiomegaly');
  const result = await runCli(['start', '--config', configPath]);
  t.is(result.code, 1, result.stderr);
  t.like(
    logLines(`${result.stdout}\n${result.stderr}`).find((l) => l.message === 'could not start'),
    { code: 'EXPLAIN_TARGET_UNKNOWN' },
  );
});

test('check-config rejects the same file with the code; a class the model has passes', async (t) => {
  const bad = await runCli(['check-config', (await setup('Cardiomegaly')).configPath]);
  t.is(bad.code, 1);
  t.regex(bad.stderr, /EXPLAIN_TARGET_UNKNOWN: explain\.target 'Cardiomegaly' is not a class of model 'demo'/);
  const good = await runCli(['check-config', (await setup('pneumonia')).configPath]);
  t.is(good.code, 0, good.stderr);
});
