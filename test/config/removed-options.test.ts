// Specification: an option that was removed is dropped with a notice that says so (never taken for a misspelling,
// never a refusal: an upgrade must not stop a daemon over a line that did nothing).
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import test from 'ava';
import { loadConfig, parseConfigTextWithNotices } from '../../src/config/load-config.js';
import { runCli } from '../helpers/gateway-process.js';

test('inference.maxWaitMs (removed: nothing ever read it) is dropped with a notice that says to delete the line', (t) => {
  const { config, notices } = parseConfigTextWithNotices('inference:\n  maxBatch: 4\n  maxWaitMs: 50\n', 'site.yaml');
  t.is(config.inference.maxBatch, 4);
  t.false('maxWaitMs' in config.inference);
  t.is(notices.length, 1);
  t.regex(notices[0] ?? '', /site\.yaml: inference\.maxWaitMs was removed: .*delete the line/);
  t.deepEqual(parseConfigTextWithNotices('inference:\n  maxBatch: 4\n', 'site.yaml').notices, []);
});

test('loadConfig and check-config carry the notice; the file is still valid', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'cxr-removed-'));
  const file = path.join(dir, 'site.yaml');
  writeFileSync(file, 'inference:\n  maxWaitMs: 50\n');
  t.is(loadConfig(file).notices.length, 1);
  const result = await runCli(['check-config', file]);
  t.is(result.code, 0, result.stderr);
  t.regex(result.stderr, /warning: .*inference\.maxWaitMs was removed/);
  t.regex(result.stdout, /valid/);
});
