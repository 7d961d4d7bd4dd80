// The daemon on PostgreSQL (issue 20): storage.database names a database of a cluster this file starts; a study
// goes in over DICOM, is processed with the tiny model into folder destinations, `cxr-gateway jobs --json` (the
// CLI on the same database) shows it done, and a kill -9 and restart keeps it done with nothing delivered twice.
// A second database on the same spool (another cluster's) is refused at start.
import test from 'ava';
import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { newUid, writeImageFile } from './helpers/dicom-factory.js';
import { storescu } from './helpers/dcmtk.js';
import { listJobs, runCli, startGateway, writeGatewayConfig } from './helpers/gateway-process.js';
import { startPostgres, type PostgresUnderTest } from './helpers/postgres.js';
import { tinyModelDir } from './helpers/tiny-densenet.js';

let cluster: PostgresUnderTest;
test.before(async () => {
  cluster = await startPostgres();
});
test.after.always(async () => {
  await cluster?.stop();
});

const SECRET = 'Not-in-any-log-9f2';

function pipelineConfig(out: string, database: string, passwordFile: string) {
  return {
    storage: {
      dataDir: 'data',
      minFreeDiskMB: 1,
      database,
      postgres: { statementTimeoutSeconds: 30, connectTimeoutSeconds: 5, passwordFile },
    },
    models: { tiny: tinyModelDir() },
    inference: { defaultModel: 'tiny', workers: 1, backend: 'wasm' },
    destinations: {
      pacs: [{ type: 'folder', name: 'pacs-folder', path: path.join(out, 'dicom') }],
      ris: [{ type: 'folder', name: 'ris-folder', path: path.join(out, 'hl7'), sendingApplication: 'CXR_GATEWAY' }],
    },
    rules: [
      {
        name: 'chest',
        match: { attributes: { Modality: { oneOf: ['CR', 'DX'] } } },
        action: { model: 'tiny', outputs: ['sc'], pacs: ['pacs-folder'], ris: ['ris-folder'] },
      },
    ],
  };
}

test('a study is received, processed and delivered once on PostgreSQL; kill -9 and restart keep it done', async (t) => {
  const out = mkdtempSync(path.join(os.tmpdir(), 'pg-gw-out-'));
  const secrets = mkdtempSync(path.join(os.tmpdir(), 'pg-gw-secret-'));
  const passwordFile = path.join(secrets, 'password');
  writeFileSync(passwordFile, `${SECRET}\n`);
  const database = await cluster.createDatabase();
  const setup = await writeGatewayConfig(pipelineConfig(out, database, passwordFile) as never);
  const first = await startGateway({}, setup);
  let firstRunning = true;
  t.teardown(async () => {
    if (firstRunning) await first.kill9();
  });
  t.like(
    first.logs.find((l) => l.event === 'STORE-2001'),
    { engine: 'postgres', store: database },
  );
  t.like(
    first.logs.find((l) => l.event === 'STORE-2013'),
    { outcome: 'written' },
  );

  const studyInstanceUid = newUid();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pg-gw-in-'));
  const pa = await writeImageFile(dir, { studyInstanceUid, viewPosition: 'PA', accessionNumber: 'ACC-PG', seed: 5 });
  t.is((await storescu(first.port, [pa.path])).code, 0);
  await first.waitForLog(
    (l) => l.event === 'EXPORT-6002' && l.studyInstanceUid === studyInstanceUid,
    'the RIS report',
    60_000,
  );
  const done = await listJobs(setup.configPath);
  t.like(
    done.jobs.filter((j) => j.studyInstanceUid === studyInstanceUid),
    [{ state: 'done', instanceCount: 1 }],
  );
  const outputs = () => ({
    dicom: readdirSync(path.join(out, 'dicom', studyInstanceUid)).sort(),
    hl7: readdirSync(path.join(out, 'hl7')).sort(),
  });
  const delivered = outputs();
  t.is(delivered.dicom.length, 1);
  t.is(delivered.hl7.length, 1);

  await first.kill9();
  firstRunning = false;
  const second = await startGateway({}, setup);
  t.teardown(() => second.stop());
  t.false(
    second.logs.some((l) => l.event === 'STORE-2013'),
    'the marker matched: nothing to write or adopt',
  );
  const again = await listJobs(setup.configPath);
  t.like(
    again.jobs.filter((j) => j.studyInstanceUid === studyInstanceUid),
    [{ state: 'done' }],
  );
  t.like(
    again.studies.find((s) => s.studyInstanceUid === studyInstanceUid),
    { instanceCount: 1 },
  );
  t.deepEqual(outputs(), delivered);
  t.false(
    [...first.logs, ...second.logs].some((l) => JSON.stringify(l).includes(SECRET)),
    'the password is in no log line',
  );
});

test('a reprocess committed by the CLI on PostgreSQL wakes the daemon through its store watch', async (t) => {
  const out = mkdtempSync(path.join(os.tmpdir(), 'pg-gw-out-'));
  const secrets = mkdtempSync(path.join(os.tmpdir(), 'pg-gw-secret-'));
  const passwordFile = path.join(secrets, 'password');
  writeFileSync(passwordFile, 'unused-with-trust\n');
  // The minutely retry sweep would wake the pipeline too: moved to once a year, so only the store watch can.
  const setup = await writeGatewayConfig({
    ...pipelineConfig(out, await cluster.createDatabase(), passwordFile),
    maintenance: { retrySweepSchedule: '0 0 1 1 *' },
  } as never);
  const gateway = await startGateway({}, setup);
  t.teardown(() => gateway.stop());
  const studyInstanceUid = newUid();
  const image = await writeImageFile(mkdtempSync(path.join(os.tmpdir(), 'pg-gw-in-')), { studyInstanceUid, seed: 6 });
  t.is((await storescu(gateway.port, [image.path])).code, 0);
  const reports = (l: { event?: string; studyInstanceUid?: unknown }) =>
    l.event === 'EXPORT-6002' && l.studyInstanceUid === studyInstanceUid;
  await gateway.waitForLog(reports, 'the first report', 60_000);
  // A ready job made by another process: nothing in the daemon knows of it but the store watch.
  const reprocess = await runCli(['reprocess', studyInstanceUid, '--config', setup.configPath]);
  t.is(reprocess.code, 0, reprocess.stderr);
  await gateway.waitForLog(() => gateway.logs.filter(reports).length >= 2, 'the report of revision 1', 30_000);
  const listing = await listJobs(setup.configPath);
  t.deepEqual(
    listing.jobs
      .filter((j) => j.studyInstanceUid === studyInstanceUid)
      .map((j) => [j.revision, j.state])
      .sort(),
    [
      [0, 'done'],
      [1, 'done'],
    ],
  );
});

test('a node whose spool belongs to another cluster refuses to start, naming both ids', async (t) => {
  const setup = await writeGatewayConfig({ storage: { database: await cluster.createDatabase() } });
  const first = await startGateway({}, setup);
  await first.stop();
  // The same spool (work folder), another database: another cluster id.
  const other = await cluster.createDatabase();
  const config = path.join(setup.workDir, 'other.yaml');
  writeFileSync(
    config,
    `dicom:\n  port: ${setup.port}\nstorage:\n  dataDir: data\n  minFreeDiskMB: 1\n  database: ${other}\nadmin:\n  port: 0\n`,
  );
  const refused = await runCli(['start', '--config', config]);
  t.not(refused.code, 0);
  const text = refused.stdout + refused.stderr;
  t.regex(text, /SPOOL_CLUSTER_MISMATCH/);
  t.regex(text, /belongs to cluster [0-9a-f-]{36}, but the job store is cluster [0-9a-f-]{36}/);
});
