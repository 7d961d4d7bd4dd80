import test from 'ava';
import {
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { newUid, writeImageFile } from '../helpers/dicom-factory.js';
import { storescu } from '../helpers/dcmtk.js';
import { runCli, startGateway, writeGatewayConfig, type ConfigOverrides } from '../helpers/gateway-process.js';
import { tinyModelDir } from '../helpers/tiny-densenet.js';

// A disk that really fills (a small tmpfs, mounted as root as CI runs these), under the real daemon.

function mountTmpfs(dir: string, sizeMb: number): () => void {
  mkdirSync(dir, { recursive: true });
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeMb}m`, 'tmpfs', dir]);
  return () => execFileSync('umount', ['-l', dir]);
}

/** Fills the file system under `dir` to the last byte; returns the filler's path (delete it to free the space). */
function fill(dir: string): string {
  const filler = path.join(dir, 'filler');
  const fd = openSync(filler, 'w');
  const chunk = Buffer.alloc(65536, 1);
  try {
    for (let size = chunk.length; size >= 1;) {
      try {
        writeSync(fd, chunk, 0, size);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
        size = Math.floor(size / 2);
      }
    }
  } finally {
    closeSync(fd);
  }
  return filler;
}

interface Listing {
  studies: Array<{ studyInstanceUid: string; instanceCount: number }>;
  jobs: Array<{
    id: number;
    studyInstanceUid: string;
    state: string;
    attempts: number;
    lastError: string | null;
    nextAttemptAt: number | null;
  }>;
}

async function jobsJson(configPath: string): Promise<Listing> {
  const result = await runCli(['jobs', '--config', configPath, '--json']);
  if (result.code !== 0) throw new Error(`jobs failed: ${result.stderr}`);
  return JSON.parse(result.stdout) as Listing;
}

function foldersConfig(out: string): ConfigOverrides {
  return {
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
    ] as never,
  };
}

test('the disk fills during a C-STORE: storescu gets A700 (out of resources), no file and no row are left; once there is room it is stored', async (t) => {
  const out = mkdtempSync(path.join(os.tmpdir(), 'full-store-out-'));
  const config = foldersConfig(out);
  const existing = await writeGatewayConfig(config);
  const dataDir = path.join(existing.workDir, 'data');
  t.teardown(mountTmpfs(dataDir, 3));
  const gateway = await startGateway(config, existing);
  t.teardown(() => gateway.stop());
  const dir = mkdtempSync(path.join(os.tmpdir(), 'full-store-in-'));
  // 1536 x 1024 x 16 bits: 3 MB, more than the file system has left; minFreeDiskMB (1) lets it start.
  const big = await writeImageFile(dir, { rows: 1536, columns: 1024, studyInstanceUid: newUid() });
  const sent = await storescu(gateway.port, [big.path], { extraArgs: ['-v'] });
  t.not(sent.code, 0);
  t.regex(`${sent.stdout}${sent.stderr}`, /Out ?of ?Resources|0xa700|A700/i);
  const spool = path.join(dataDir, 'spool');
  t.deepEqual(readdirSync(path.join(spool, 'incoming')), []);
  t.deepEqual(readdirSync(path.join(spool, 'studies')), [], 'no orphan file under studies/');
  t.deepEqual((await jobsJson(existing.configPath)).studies, [], 'no row');

  const small = await writeImageFile(dir, { studyInstanceUid: newUid() });
  t.is((await storescu(gateway.port, [small.path])).code, 0, 'a store that fits still succeeds');
});

test('the outputs disk is full when a job writes: the job waits (visible in jobs), and once space is back its SC and HL7 reach the folders', async (t) => {
  const out = mkdtempSync(path.join(os.tmpdir(), 'full-out-'));
  const config = foldersConfig(out);
  const existing = await writeGatewayConfig(config);
  const outputs = path.join(existing.workDir, 'data', 'spool', 'outputs');
  t.teardown(mountTmpfs(outputs, 1));
  const filler = fill(outputs);
  const gateway = await startGateway(config, existing);
  t.teardown(() => gateway.stop());

  const studyInstanceUid = newUid();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'full-out-in-'));
  const pa = await writeImageFile(dir, { studyInstanceUid, viewPosition: 'PA', seed: 5 });
  t.is((await storescu(gateway.port, [pa.path])).code, 0, 'storing is not affected: another file system');

  const waiting = await gateway.waitForLog(
    (l) => l.event === 'PIPELINE-4004' && l.studyInstanceUid === studyInstanceUid,
    'the wait for space',
  );
  t.is(waiting.level, 'warn');
  t.regex(String(waiting.why), /ENOSPC/);
  const during = (await jobsJson(existing.configPath)).jobs.find((j) => j.studyInstanceUid === studyInstanceUid);
  t.like(during, { state: 'processing' });
  t.regex(during?.lastError ?? '', /^NO_SPACE: waiting for disk space: .*ENOSPC/);
  t.true((during?.nextAttemptAt ?? 0) > 0);
  t.false(
    gateway.logs.some((l) => l.event === 'ANALYSIS-5011' && l.studyInstanceUid === studyInstanceUid),
    'never marked failed for ENOSPC',
  );

  rmSync(filler);
  await gateway.waitForLog(
    (l) => l.event === 'EXPORT-6002' && l.studyInstanceUid === studyInstanceUid,
    'the RIS report after space came back',
    120_000,
  );
  const after = (await jobsJson(existing.configPath)).jobs.find((j) => j.studyInstanceUid === studyInstanceUid);
  t.like(after, { state: 'done', lastError: null, nextAttemptAt: null });
  t.true((after?.attempts ?? 0) >= 2, 'the wait and the successful pass are both counted');
  const objects = readdirSync(path.join(out, 'dicom', studyInstanceUid));
  t.is(objects.length, 1, 'the SC is in the PACS folder');
  const messages = readdirSync(path.join(out, 'hl7'));
  t.is(messages.length, 1);
  t.regex(readFileSync(path.join(out, 'hl7', messages[0] as string), 'utf8'), /^MSH\|/);
  t.false(existsSync(filler));
});
