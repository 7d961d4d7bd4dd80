// Writes docs/errors.md from the catalogue (ERROR_CODES in src/errors.ts), after a build:
//   npx tsc -p tsconfig.json && node tools/errors-doc.mjs
// test/errors.test.ts fails while the two differ.
import { writeFileSync } from 'node:fs';
const root = new URL('..', import.meta.url);
const { ERROR_CODES } = await import(new URL('dist/src/errors.js', root).href);
const rows = Object.entries(ERROR_CODES).map(([k, v]) => {
  const i = v.indexOf('; ');
  return `| \`${k}\` | ${v.slice(0, i)} | ${v.slice(i + 2)} |`;
});
const text = [
  '# Error codes',
  '',
  'Every failure that leaves a module of cxr-gateway is a `GatewayError` with one of these codes. The catalogue is',
  '`ERROR_CODES` in [src/errors.ts](../src/errors.ts): add a code there, then rewrite this file with',
  '`npx tsc -p tsconfig.json && node tools/errors-doc.mjs` (`test/errors.test.ts` fails while the two differ).',
  'Scripts, metrics and tests match on the code; the sentence that comes with it in a message or log line says what',
  'happened to this study or file.',
  '',
  'Where the codes appear:',
  '',
  '- a failed image is stored as `CODE: sentence`, and so is the reason of a job that waits or whose images failed',
  "  (`IMAGES_FAILED: ...` followed by each image's UID and `CODE: sentence`); `cxr-gateway jobs` shows it, and",
  "  `jobs --json` gives each job's `code` (null when it has none). A code raised inside an inference worker thread",
  '  crosses to the main thread with the failure, so it is the same code;',
  '- `classify --json` reports a code per file;',
  '- the log lines `could not start` and `configuration reload refused` carry `code`, e.g. `EXPLAIN_TARGET_UNKNOWN`',
  '  when `explain.target` names a class a configured model lacks (refused at start, before any worker starts, and at',
  '  reload, which keeps the running configuration), or `CONFIG_INVALID`.',
  '',
  'Deliveries keep their own lower-case `cause` vocabulary (`connection-refused: ...`, see src/export).',
  '',
  '| Code | Meaning | What to do |',
  '| --- | --- | --- |',
  ...rows,
  '',
].join('\n');
writeFileSync(new URL('docs/errors.md', root), text);
