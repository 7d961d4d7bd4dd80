import test from 'ava';
import { chmodSync, existsSync, mkdtempSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConsoleRefusal } from '../../src/admin/console-types.js';
import { applyRules, dryRunRules, KEPT_BACKUPS, validateRules } from '../../src/admin/rules-editor.js';
import { loadConfig } from '../../src/config/load-config.js';
import type { GatewayConfig } from '../../src/config/schema.js';
import type { ConsoleQueries, InstanceRowOut, StudyRowOut } from '../../src/store/console-queries.js';
import type { JobStore } from '../../src/store/job-store.js';
import { PipelineStore } from '../../src/store/pipeline-store.js';
import { writeImageFile } from '../helpers/dicom-factory.js';
import { openTestStore } from '../helpers/pipeline-harness.js';

// The rules editor on real config files in a temp dir and on studies stored through the real JobStore.

const CONFIG_TEXT = `# Site configuration of the test hospital
# (this comment must survive an apply)
storage:
  dataDir: data   # relative to this file
models:
  demo: models/demo
destinations:
  pacs:
    - { type: folder, name: pacs-a, path: out/a }
    - { type: folder, name: pacs-b, path: out/b }
  ris:
    - { type: folder, name: ris-a, path: out/hl7 }
rules:
  # the chest rule
  - name: chest
    match: { attributes: { Modality: { oneOf: [DX, CR] } } }
    action: { model: demo, pacs: [pacs-a], ris: [ris-a] }
# trailing comment about delivery
delivery:
  maxAttempts: 5
`;

function siteFile(): { file: string; dir: string; running: GatewayConfig } {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'rules-editor-'));
  const file = path.join(dir, 'cxr-gateway.yaml');
  writeFileSync(file, CONFIG_TEXT);
  return { file, dir, running: loadConfig(file).config };
}

const GOOD = [
  {
    name: 'dx-only',
    match: { attributes: { Modality: 'DX' } },
    action: { model: 'demo', pacs: ['pacs-b'], ris: [] },
  },
  { name: 'rest', action: { ignore: true } },
];

test('validateRules: a good set passes with defaults filled in', (t) => {
  const { running } = siteFile();
  const v = validateRules(running, GOOD);
  t.true(v.ok);
  if (v.ok) t.like(v.rules[0], { name: 'dx-only', action: { outputs: ['sc'], priority: 'normal' } });
});

test('validateRules: an unknown destination, model or key is refused with its key path and reason', (t) => {
  const { running } = siteFile();
  const v = validateRules(running, [
    GOOD[0],
    { name: 'bad', action: { model: 'nope', pacs: ['pacs-a', 'pacs-x'] } },
    { name: 'typo', action: { ignore: true }, mtach: {} },
  ]);
  t.false(v.ok);
  if (v.ok) return;
  t.deepEqual(
    v.issues.find((i) => i.path === 'rules.1.action.pacs.1'),
    {
      path: 'rules.1.action.pacs.1',
      message: "rule 'bad' names PACS destination 'pacs-x', which is not in destinations.pacs",
    },
  );
  t.true(v.issues.some((i) => i.path === 'rules.1.action.model'));
  t.true(v.issues.some((i) => i.path === 'rules.2' && /mtach/.test(i.message)));
  const notList = validateRules(running, { name: 'x' });
  t.deepEqual(notList, { ok: false, issues: [{ path: 'rules', message: 'the rule set must be a list of rules' }] });
});

test('applyRules: writes the rules, keeps comments elsewhere, keeps the previous file as a backup, reloads', async (t) => {
  const { file, dir, running } = siteFile();
  const reloads: GatewayConfig[] = [];
  const now = Date.UTC(2026, 11, 6, 12, 30, 0, 123);
  const applied = await applyRules({
    configPath: file,
    running,
    candidate: GOOD,
    load: (p) => loadConfig(p).config,
    reload: async (next) => (reloads.push(next), { ok: true, error: null }),
    now,
  });
  t.is(applied.rules, 2);
  t.is(applied.backup, path.join(dir, 'cxr-gateway.yaml.20261206T123000.123Z.bak'));
  t.is(readFileSync(applied.backup, 'utf8'), CONFIG_TEXT);
  const text = readFileSync(file, 'utf8');
  t.true(text.startsWith('# Site configuration of the test hospital\n# (this comment must survive an apply)\n'));
  t.true(text.includes('dataDir: data # relative to this file'));
  t.true(text.includes('# trailing comment about delivery'));
  const reread = loadConfig(file).config;
  t.deepEqual(
    reread.rules.map((r) => r.name),
    ['dx-only', 'rest'],
  );
  t.is(reread.delivery.maxAttempts, 5);
  t.is(reloads.length, 1);
  t.deepEqual(
    reloads[0]?.rules.map((r) => r.name),
    ['dx-only', 'rest'],
  );
  t.deepEqual(applied.before, running.rules);
});

test('applyRules: the new file and the backup keep the file permissions (a 0640 site file stays 0640)', async (t) => {
  const { file, running } = siteFile();
  chmodSync(file, 0o640);
  const applied = await applyRules({
    configPath: file,
    running,
    candidate: GOOD,
    load: (p) => loadConfig(p).config,
    reload: async () => ({ ok: true, error: null }),
    now: Date.now(),
  });
  t.is(statSync(file).mode & 0o777, 0o640);
  t.is(statSync(applied.backup).mode & 0o777, 0o640);
});

test('applyRules: an invalid candidate changes nothing (same bytes, no backup, no reload) and says why', async (t) => {
  const { file, dir, running } = siteFile();
  let reloaded = false;
  const error = await t.throwsAsync(
    applyRules({
      configPath: file,
      running,
      candidate: [{ name: 'x', action: { model: 'demo', ris: ['ris-zzz'] } }],
      load: (p) => loadConfig(p).config,
      reload: async () => ((reloaded = true), { ok: true, error: null }),
      now: Date.now(),
    }),
    { instanceOf: ConsoleRefusal },
  );
  t.is(error?.status, 422);
  t.regex(error?.message ?? '', /rules\.0\.action\.ris\.0: rule 'x' names RIS destination 'ris-zzz'/);
  t.is(readFileSync(file, 'utf8'), CONFIG_TEXT);
  t.deepEqual(readdirSync(dir), ['cxr-gateway.yaml']);
  t.false(reloaded);
});

test('applyRules: refused (409) on the embedded default, where there is no file', async (t) => {
  const { running } = siteFile();
  const error = await t.throwsAsync(
    applyRules({
      configPath: undefined,
      running,
      candidate: GOOD,
      load: () => running,
      reload: async () => ({ ok: true, error: null }),
      now: 0,
    }),
    { instanceOf: ConsoleRefusal },
  );
  t.is(error?.status, 409);
  t.regex(error?.message ?? '', /embedded default/);
});

test('applyRules: a refused reload puts the previous file back (503 with the reason)', async (t) => {
  const { file, running } = siteFile();
  const error = await t.throwsAsync(
    applyRules({
      configPath: file,
      running,
      candidate: GOOD,
      load: (p) => loadConfig(p).config,
      reload: async () => ({ ok: false, error: 'a destination could not start' }),
      now: Date.now(),
    }),
    { instanceOf: ConsoleRefusal },
  );
  t.is(error?.status, 503);
  t.regex(error?.message ?? '', /a destination could not start/);
  t.is(readFileSync(file, 'utf8'), CONFIG_TEXT);
});

test(`applyRules: keeps the newest ${KEPT_BACKUPS} backups`, async (t) => {
  const { file, dir, running } = siteFile();
  const start = Date.UTC(2026, 0, 1);
  for (let i = 0; i < KEPT_BACKUPS + 3; i++) {
    await applyRules({
      configPath: file,
      running,
      candidate: i % 2 === 0 ? GOOD : running.rules,
      load: (p) => loadConfig(p).config,
      reload: async () => ({ ok: true, error: null }),
      now: start + i * 60_000,
    });
  }
  const backups = readdirSync(dir)
    .filter((f) => f.endsWith('.bak'))
    .sort();
  t.is(backups.length, KEPT_BACKUPS);
  t.is(backups[0], 'cxr-gateway.yaml.20260101T000300.000Z.bak');
  t.false(existsSync(path.join(dir, 'cxr-gateway.yaml.20260101T000000.000Z.bak')));
});

/** ConsoleQueries over the real JobStore for what the dry run reads (the real ConsoleStore is helper "store"'s). */
function storeQueries(store: JobStore): ConsoleQueries {
  const db = store.connection;
  const pipelineStore = new PipelineStore(db);
  const studyRow = (uid: string): StudyRowOut => {
    const s = store.listStudies().find((x) => x.studyInstanceUid === uid);
    if (s === undefined) throw new Error(`no study ${uid}`);
    return { ...s, accessionNumber: null, modality: null, studyDate: null, latestJob: null };
  };
  const instances = (uid: string): InstanceRowOut[] =>
    pipelineStore.studyInstances(uid).map((i) => ({
      ...i,
      sopClassUid: '',
      seriesInstanceUid: null,
      receivedAt: 0,
    }));
  const unused = () => {
    throw new Error('not used by the dry run');
  };
  return {
    recentStudies: (last) =>
      store
        .listStudies()
        .reverse()
        .slice(0, last)
        .map((s) => ({ study: studyRow(s.studyInstanceUid), instances: instances(s.studyInstanceUid) })),
    studyRows: (uid) => {
      const jobs = db
        .prepare(
          'SELECT id, state, rule, action FROM jobs WHERE study_instance_uid = ? ORDER BY revision DESC, id DESC',
        )
        .all(uid) as Array<{ id: number; state: string; rule: string | null; action: string | null }>;
      return {
        study: studyRow(uid),
        instances: [],
        jobs: jobs.map((j) => ({ ...j, images: [], deliveries: [] })),
      } as unknown as ReturnType<ConsoleQueries['studyRows']>;
    },
    studies: unused,
    jobs: unused,
    deliveries: unused,
    delivery: unused,
    studyOfJob: unused,
    throughput: unused,
    destinationActivity: unused,
    releaseDelivery: unused,
    releaseDestination: unused,
    discardDelivery: unused,
    reprocessStudy: unused,
  };
}

test('dryRunRules: routes stored studies with the candidate and lists what would change, beside what happened', async (t) => {
  const { running } = siteFile();
  const store = openTestStore('dry-run-');
  t.teardown(() => store.close());
  const dir = mkdtempSync(path.join(os.tmpdir(), 'dry-run-files-'));
  const pipelineStore = new PipelineStore(store.connection);
  const studies: Record<string, string> = {};
  let clock = 1_000;
  for (const [label, modality, sopClass] of [
    ['dx', 'DX', 'dx-presentation'],
    ['cr', 'CR', 'cr'],
    ['ct', 'CT', 'cr'],
  ] as const) {
    const image = await writeImageFile(dir, { modality, sopClass, rows: 16, columns: 16 });
    studies[label] = image.studyInstanceUid;
    store.recordInstance({
      sopInstanceUid: image.sopInstanceUid,
      sopClassUid: image.sopClassUid,
      studyInstanceUid: image.studyInstanceUid,
      seriesInstanceUid: image.seriesInstanceUid,
      transferSyntaxUid: image.transferSyntaxUid,
      path: image.path,
      sizeBytes: image.bytes.length,
      callingAe: 'DX1',
      calledAe: 'CXR_GATEWAY',
      sourceIp: '127.0.0.1',
      associationId: 'a1',
      attributes: { modality },
      receivedAt: clock,
    });
    clock += 1000;
  }
  // What happened under the running rules (chest: DX and CR to pacs-a and ris-a; CT matched nothing).
  const running0 = running.rules[0];
  if (running0 === undefined || running0.action.ignore === true) throw new Error('test config');
  for (const ready of store.promoteQuietStudies(clock, clock)) {
    if (ready.studyInstanceUid === studies['ct'])
      pipelineStore.routeJob(ready.jobId, { ignored: 'no rule matches' }, clock);
    else
      pipelineStore.routeJob(
        ready.jobId,
        { rule: 'chest', action: JSON.stringify(running0.action), priority: 'normal', images: [] },
        clock,
      );
  }
  const dry = dryRunRules(running, storeQueries(store), GOOD, 10);
  t.is(dry.studies, 3);
  const row = (label: string) => dry.rows.find((r) => r.studyInstanceUid === studies[label]);
  t.deepEqual(row('dx')?.happened, {
    rule: 'chest',
    ignored: false,
    model: 'demo',
    outputs: ['sc'],
    pacs: ['pacs-a'],
    ris: ['ris-a'],
    priority: 'normal',
  });
  t.like(row('dx')?.would, { rule: 'dx-only', ignored: false, pacs: ['pacs-b'], ris: [] });
  t.deepEqual(row('dx')?.changes, ['rule', 'pacs', 'ris']);
  t.like(row('cr')?.would, { rule: 'rest', ignored: true, model: null });
  t.deepEqual(row('cr')?.changes, ['ignored', 'rule', 'model', 'outputs', 'pacs', 'ris', 'priority']);
  t.like(row('ct')?.happened, { ignored: true });
  t.deepEqual(row('ct')?.changes, []);
  t.is(dry.changed, 2);
  // The running rules against the same studies: nothing changes.
  t.is(dryRunRules(running, storeQueries(store), running.rules, 10).changed, 0);
  // Invalid candidates and ranges are refused before anything is read.
  t.is(
    t.throws(() => dryRunRules(running, storeQueries(store), [{ name: 'x', action: { model: 'zz' } }], 10), {
      instanceOf: ConsoleRefusal,
    })?.status,
    422,
  );
  t.is(t.throws(() => dryRunRules(running, storeQueries(store), GOOD, 0), { instanceOf: ConsoleRefusal })?.status, 400);
});
