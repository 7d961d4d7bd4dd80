// Studies per minute with one and with two analysis nodes on one PostgreSQL store (issue 20).
//
//   node dist/bench/cluster-throughput.js [--studies 200] [--size 512] [--workers 1] [--rounds 3]
//
// Per run (one analysis node, then two, in one invocation; each run a new database and spool): a receive+deliver
// node (folder destinations: the PACS and RIS sides are not what is measured) and N analysis nodes ([analyze],
// the demo model, --workers inference workers each) are started and ready first; then --studies one-image studies
// are sent to the receive node in one association. Throughput is studies per minute from the first job routed
// to the last job written (PIPELINE-4001 .. PIPELINE-4007, the nodes' own log timestamps), so the model loading
// at start and the assembly quiet period of the first study stay out of it. All nodes run on this one machine:
// two analysis nodes share its cores, which is what the figure shows; on separate hosts each brings its own.
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { newUid, writeImageFile } from '../test/helpers/dicom-factory.js';
import { storescu } from '../test/helpers/dcmtk.js';
import {
  startGateway,
  writeGatewayConfig,
  type GatewayUnderTest,
  type LogLine,
} from '../test/helpers/gateway-process.js';
import { startPostgres } from '../test/helpers/postgres.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

function option(name: string, fallback: number): number {
  const at = process.argv.indexOf(`--${name}`);
  if (at < 0) return fallback;
  const value = Number(process.argv[at + 1]);
  if (!Number.isInteger(value) || value < 1) throw new Error(`--${name} takes a whole number from 1`);
  return value;
}

const studies = option('studies', 200);
const size = option('size', 512);
const workers = option('workers', 1);
const rounds = option('rounds', 3);

const timeOf = (line: LogLine): number => Date.parse(String(line.timestamp));

async function run(analysisNodes: number): Promise<{ studiesPerMinute: number; seconds: number }> {
  const cluster = await startPostgres();
  const started: GatewayUnderTest[] = [];
  try {
    const database = await cluster.createDatabase();
    const spool = mkdtempSync(path.join(os.tmpdir(), 'bench-cluster-spool-'));
    const out = mkdtempSync(path.join(os.tmpdir(), 'bench-cluster-out-'));
    const config = (nodeName: string, roles: string[]) =>
      writeGatewayConfig({
        storage: { dataDir: spool, database },
        cluster: { nodeName, roles, leaseSeconds: 30, heartbeatSeconds: 2 },
        logging: { level: 'info' },
        models: { demo: path.join(ROOT, 'models/demo') },
        inference: { defaultModel: 'demo', workers, backend: 'wasm' },
        destinations: {
          pacs: [{ type: 'folder', name: 'pacs-folder', path: path.join(out, 'dicom') }],
          ris: [{ type: 'folder', name: 'ris-folder', path: path.join(out, 'hl7'), sendingApplication: 'CXR_GATEWAY' }],
        } as unknown as Record<string, unknown>,
        rules: [
          {
            name: 'chest',
            match: { attributes: { Modality: { oneOf: ['CR', 'DX'] } } },
            action: { model: 'demo', outputs: ['sc'], pacs: ['pacs-folder'], ris: ['ris-folder'] },
          },
        ] as unknown as Record<string, unknown>,
      });
    const receiver = await startGateway({}, await config('receive', ['receive', 'deliver']));
    started.push(receiver);
    const analysers = await Promise.all(
      Array.from({ length: analysisNodes }, async (_, i) =>
        startGateway({}, await config(`analyze-${i + 1}`, ['analyze']), 'GATEWAY-7010'),
      ),
    );
    started.push(...analysers);

    const dir = mkdtempSync(path.join(os.tmpdir(), 'bench-cluster-in-'));
    const files: string[] = [];
    for (let i = 0; i < studies; i += 1)
      files.push((await writeImageFile(dir, { studyInstanceUid: newUid(), rows: size, columns: size, seed: i })).path);
    const sent = await storescu(receiver.port, files);
    if (sent.code !== 0) throw new Error(`storescu failed: ${sent.stderr}`);

    const written = () => analysers.flatMap((a) => a.logs.filter((l) => l.event === 'PIPELINE-4007'));
    const deadline = Date.now() + 30 * 60_000;
    while (written().length < studies && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    if (written().length < studies) throw new Error(`only ${written().length} of ${studies} jobs were written`);
    const routed = analysers.flatMap((a) => a.logs.filter((l) => l.event === 'PIPELINE-4001')).map(timeOf);
    const seconds = (Math.max(...written().map(timeOf)) - Math.min(...routed)) / 1000;
    const perNode = analysers.map((a) => a.logs.filter((l) => l.event === 'PIPELINE-4007').length);
    console.log(
      `${analysisNodes} analysis node(s): ${studies} studies in ${seconds.toFixed(1)} s = ` +
        `${((studies / seconds) * 60).toFixed(1)} studies/min (jobs per node: ${perNode.join(', ')})`,
    );
    return { studiesPerMinute: (studies / seconds) * 60, seconds };
  } finally {
    await Promise.all(started.map((g) => g.stop()));
    await cluster.stop();
  }
}

// Rounds alternate the order (1 then 2, 2 then 1): this machine's load drifts, and the median of each is reported.
const results: Record<1 | 2, number[]> = { 1: [], 2: [] };
for (let round = 0; round < rounds; round += 1)
  for (const nodes of round % 2 === 0 ? ([1, 2] as const) : ([2, 1] as const))
    results[nodes].push((await run(nodes)).studiesPerMinute);
const median = (xs: number[]): number => {
  const sorted = [...xs].sort((x, y) => x - y);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[mid] ?? 0) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
};
const [one, two] = [median(results[1]), median(results[2])];
console.log(
  JSON.stringify({
    studies,
    size,
    workersPerNode: workers,
    rounds,
    cores: os.cpus().length,
    oneNode: Number(one.toFixed(1)),
    twoNodes: Number(two.toFixed(1)),
    speedup: Number((two / one).toFixed(2)),
    runs: {
      oneNode: results[1].map((x) => Number(x.toFixed(1))),
      twoNodes: results[2].map((x) => Number(x.toFixed(1))),
    },
  }),
);
