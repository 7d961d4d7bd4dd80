// The log event catalogue is a contract with whoever reads the log: docs/log-events.md lists exactly its codes (with
// level and meaning), every code is logged somewhere in src/, and the codes follow the per-stage numbering.

import test from 'ava';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { LOG_EVENTS, type LogEvent } from '../../src/logging/log-events.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const catalogueFile = path.join(repoRoot, 'src/logging/log-events.ts');

const STAGE_RANGES: Record<string, number> = {
  DIMSE: 1,
  STORE: 2,
  ASSEMBLY: 3,
  PIPELINE: 4,
  ANALYSIS: 5,
  EXPORT: 6,
  GATEWAY: 7,
  // The operations console (issue 16): ADMIN-71xx HTTP side, 72xx service, 73xx store and CLI.
  ADMIN: 7,
  MAINT: 8,
  CONFIG: 9,
};

function documentedEvents(): Array<{ code: string; level: string; meaning: string }> {
  const text = readFileSync(path.join(repoRoot, 'docs/log-events.md'), 'utf8');
  const rows: Array<{ code: string; level: string; meaning: string }> = [];
  for (const line of text.split('\n')) {
    const row = /^\|\s*`([A-Z]+-\d{4})`\s*\|\s*(\w+)\s*\|\s*(.*?)\s*\|\s*$/.exec(line);
    if (row) rows.push({ code: row[1] ?? '', level: row[2] ?? '', meaning: row[3] ?? '' });
  }
  return rows;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(full);
    return entry.name.endsWith('.ts') ? [full] : [];
  });
}

test('docs/log-events.md lists exactly the catalogue: every code once, with its level and meaning', (t) => {
  const documented = documentedEvents();
  const catalogue = Object.entries(LOG_EVENTS).map(([code, spec]) => ({
    code,
    level: spec.level,
    meaning: spec.meaning,
  }));
  t.deepEqual(
    documented.map((d) => d.code).sort(),
    catalogue.map((c) => c.code).sort(),
    'the same codes in the page and in src/logging/log-events.ts',
  );
  t.is(new Set(documented.map((d) => d.code)).size, documented.length, 'no code listed twice');
  for (const entry of catalogue)
    t.deepEqual(
      documented.find((d) => d.code === entry.code),
      entry,
      entry.code,
    );
});

test('every code is logged somewhere in src/ (a text scan outside the catalogue)', (t) => {
  const sources = sourceFiles(path.join(repoRoot, 'src'))
    .filter((file) => file !== catalogueFile)
    .map((file) => readFileSync(file, 'utf8'))
    .join('\n');
  const unused = (Object.keys(LOG_EVENTS) as LogEvent[]).filter((code) => !sources.includes(`'${code}'`));
  t.deepEqual(unused, [], 'codes in the catalogue that no line logs: delete them or log them');
});

test("codes follow the per-stage numbering: STAGE-Nxxx with N the stage's range", (t) => {
  for (const code of Object.keys(LOG_EVENTS)) {
    const parts = /^([A-Z]+)-(\d)\d{3}$/.exec(code);
    t.truthy(parts, `${code} is STAGE-NNNN`);
    t.is(STAGE_RANGES[parts?.[1] ?? ''], Number(parts?.[2]), `${code} is in its stage's range`);
  }
});

test('every code a src/ line logs is in the catalogue (no typo hides behind a cast)', (t) => {
  const known = new Set<string>(Object.keys(LOG_EVENTS));
  const pattern = new RegExp(`'((?:${Object.keys(STAGE_RANGES).join('|')})-\\d{4})'`, 'g');
  const unknown: string[] = [];
  for (const file of sourceFiles(path.join(repoRoot, 'src'))) {
    for (const match of readFileSync(file, 'utf8').matchAll(pattern)) {
      if (!known.has(match[1] ?? '')) unknown.push(`${path.relative(repoRoot, file)}: ${match[1]}`);
    }
  }
  t.deepEqual(unknown, []);
});
