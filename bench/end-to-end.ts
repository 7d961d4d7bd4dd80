// The daemon end to end (issue 7): storescu -> cxr-gateway -> Orthanc (PACS) and the python3-hl7 listener (RIS).
//
//   node dist/bench/end-to-end.js [--models demo,densenet201] [--engines tfjs,onnxruntime] [--latency-studies 20]
//       [--burst-studies 200] [--size 512] [--workers 1] [--quiet 1] [--json-out FILE] [--keep]
//
// Per model and engine (inference.engine; tfjs runs the wasm backend, onnxruntime its CPU provider with the
// machine's cores as intra-op threads: the daemon's defaults on a CPU host before and after issue 18), one daemon
// (a child process, --workers inference workers), one Orthanc, one listener:
//  1. warm-up: one study through everything (model load and first-run costs stay out of the figures);
//  2. latency: --latency-studies studies one after the other, each sent when the previous one's ORU was
//     acknowledged: last image received (the store's studies.last_received_at) to the RIS ACK (the RIS delivery
//     marked delivered). The assembly quiet period (--quiet seconds, waiting for more images of the study) is part
//     of that latency by design; it is also reported without it;
//  3. the reference, same invocation: the sum of the stage times the daemon measured for each of those studies
//     (decode, explain (forward pass and LRP), write in the inference worker; PACS and RIS sends), read from its logs. The pipeline
//     overhead ratio is (latency - quiet period) / sum of stage times: 1 would mean no time spent between stages;
//  4. burst: --burst-studies studies pushed at once by 4 storescu processes side by side; throughput is studies
//     per minute from the first image received to the last RIS ACK; peak RSS is the daemon's VmHWM (reset through
//     /proc/PID/clear_refs just before the burst, so it is the burst's own peak; inference workers are threads of
//     the daemon, so they are included).
// Phantom studies (one frontal DX image each, --size pixels, MONOCHROME1/2, 12-16 bits) come from the phantom
// generator with fixed seeds. DenseNet-201 gets random torchvision weights (tools/bench_torch_densenet.py
// --export-weights, Debian's PyTorch) and a manifest written here.

import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { phantomIdentity, phantomPart10 } from '../src/phantoms/phantom-dicom.js';
import { phantomSpecFor } from '../src/phantoms/phantom-spec.js';
import { renderPhantom } from '../src/phantoms/render-phantom.js';
import { storescu } from '../test/helpers/dcmtk.js';
import { startGateway, type GatewayUnderTest, type LogLine } from '../test/helpers/gateway-process.js';
import { startHl7Listener, type Hl7Listener } from '../test/helpers/hl7-listener.js';
import { startOrthanc, type OrthancUnderTest } from '../test/helpers/orthanc.js';
import { PACS_NAME, RIS_NAME, peerConfig, withStore } from '../test/helpers/pipeline-peers.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const PYTHON = '/usr/bin/python3';

interface Options {
  models: string[];
  engines: Array<'tfjs' | 'onnxruntime'>;
  latencyStudies: number;
  burstStudies: number;
  size: number;
  workers: number;
  quiet: number;
  jsonOut?: string;
  keep: boolean;
}

function parseArgs(argv: string[]): Options {
  const o: Options = {
    models: ['demo', 'densenet201'],
    engines: ['tfjs', 'onnxruntime'],
    latencyStudies: 20,
    burstStudies: 200,
    size: 512,
    workers: 1,
    quiet: 1,
    keep: false,
  };
  for (let i = 0; i < argv.length; i += 1) {
    const a = argv[i];
    const next = () => argv[++i] ?? '';
    if (a === '--models') o.models = next().split(',');
    else if (a === '--engines') {
      o.engines = next()
        .split(',')
        .map((e) => {
          if (e !== 'tfjs' && e !== 'onnxruntime') throw new Error(`--engines: tfjs or onnxruntime, not ${e}`);
          return e;
        });
    } else if (a === '--latency-studies') o.latencyStudies = Number(next());
    else if (a === '--burst-studies') o.burstStudies = Number(next());
    else if (a === '--size') o.size = Number(next());
    else if (a === '--workers') o.workers = Number(next());
    else if (a === '--quiet') o.quiet = Number(next());
    else if (a === '--json-out') o.jsonOut = next();
    else if (a === '--keep') o.keep = true;
    else throw new Error(`unknown option ${a}`);
  }
  return o;
}

const log = (m: string) => process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${m}\n`);

/** One phantom study per file: frontal DX, its own study UID and accession. */
function writeStudies(
  dir: string,
  count: number,
  seed: number,
  size: number,
): Array<{ file: string; studyInstanceUid: string }> {
  mkdirSync(dir, { recursive: true });
  const out = [];
  for (let i = 0; i < count; i += 1) {
    const spec = phantomSpecFor(i, seed, { size });
    const id = phantomIdentity(spec, seed);
    const file = path.join(dir, `${String(i).padStart(4, '0')}.dcm`);
    writeFileSync(file, phantomPart10(renderPhantom(spec), id, 'explicit'));
    out.push({ file, studyInstanceUid: id.studyInstanceUid });
  }
  return out;
}

/** DenseNet-201 with random torchvision weights, as a model folder the daemon loads like a site's. */
function densenet201Dir(work: string): string {
  const dir = path.join(work, 'densenet201');
  mkdirSync(dir, { recursive: true });
  const weights = path.join(dir, 'weights.safetensors');
  const r = spawnSync(
    PYTHON,
    [
      path.join(ROOT, 'tools/bench_torch_densenet.py'),
      '--arch',
      'densenet201',
      '--seed',
      '0',
      '--repeats',
      '1',
      '--warmup',
      '0',
      '--export-weights',
      weights,
    ],
    { encoding: 'utf8' },
  );
  if (r.status !== 0) throw new Error(`exporting DenseNet-201 weights failed: ${r.stderr}`);
  const template = JSON.parse(
    readFileSync(path.join(ROOT, 'models/densenet201-covid/manifest.template.json'), 'utf8'),
  ) as Record<string, unknown>;
  const manifest = {
    ...template,
    version: 'bench',
    modelUid: '2.25.1',
    weights: {
      file: 'weights.safetensors',
      format: 'safetensors',
      sha256: createHash('sha256').update(readFileSync(weights)).digest('hex'),
    },
    intendedUse: 'Benchmark only: random weights. Not for diagnostic use.',
  };
  writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify(manifest, null, 2));
  return dir;
}

function percentile(sorted: number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number;
}

const median = (xs: number[]) =>
  percentile(
    [...xs].sort((a, b) => a - b),
    0.5,
  );

/** Per study: last image received and RIS delivered, from the daemon's store (epoch ms). */
function storeTimes(workDir: string): Map<string, { lastReceived: number; risDone: number }> {
  return withStore(workDir, (db) => {
    const rows = db
      .prepare(
        `SELECT s.study_instance_uid AS uid, s.last_received_at AS lastReceived, d.updated_at AS risDone
           FROM studies s JOIN jobs j ON j.study_instance_uid = s.study_instance_uid
           JOIN deliveries d ON d.job_id = j.id AND d.kind = 'ris' AND d.state = 'delivered'`,
      )
      .all() as Array<{ uid: string; lastReceived: number; risDone: number }>;
    return new Map(rows.map((r) => [r.uid, { lastReceived: r.lastReceived, risDone: r.risDone }]));
  });
}

/** Sum of the stage times the daemon logged for one study (ms). */
function stageSum(logs: LogLine[], studyInstanceUid: string): { total: number; stages: Record<string, number> } {
  const stages: Record<string, number> = {};
  for (const l of logs) {
    if (l.studyInstanceUid !== studyInstanceUid) continue;
    if (l.event === 'ANALYSIS-5010')
      for (const [k, v] of Object.entries(l.stageMs as Record<string, number>)) stages[k] = (stages[k] ?? 0) + v;
    else if (l.event === 'EXPORT-6001') stages['pacs'] = (stages['pacs'] ?? 0) + Number(l.ms);
    else if (l.event === 'EXPORT-6002') stages['ris'] = (stages['ris'] ?? 0) + Number(l.ms);
  }
  return { total: Object.values(stages).reduce((a, b) => a + b, 0), stages };
}

function procStatus(pid: number, field: string): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : Number.NaN;
}

async function waitReported(gateway: GatewayUnderTest, uid: string, timeoutMs: number): Promise<void> {
  await gateway.waitForLog(
    (l) => l.event === 'EXPORT-6002' && l.studyInstanceUid === uid,
    `the RIS report of ${uid}`,
    timeoutMs,
  );
}

interface ModelResult {
  model: string;
  engine: 'tfjs' | 'onnxruntime';
  latency: { studies: number; p50Ms: number; p95Ms: number; p50WithoutQuietMs: number; p95WithoutQuietMs: number };
  stages: { medianSumMs: number; medianPerStageMs: Record<string, number> };
  overheadRatio: number;
  burst: { studies: number; seconds: number; studiesPerMinute: number; peakRssBytes: number; rssBeforeBytes: number };
}

async function runModel(
  name: string,
  engine: 'tfjs' | 'onnxruntime',
  modelDir: string,
  o: Options,
  work: string,
): Promise<ModelResult> {
  // The same seeds for every engine: each sees the same studies.
  const inputs = path.join(work, `in-${name}-${engine}`);
  const warm = writeStudies(path.join(inputs, 'warm'), 1, 7001, o.size);
  const sequential = writeStudies(path.join(inputs, 'latency'), o.latencyStudies, 7002, o.size);
  const burst = writeStudies(path.join(inputs, 'burst'), o.burstStudies, 7003, o.size);
  log(`${name}: ${1 + sequential.length + burst.length} phantom studies written (${o.size} px)`);

  let orthanc: OrthancUnderTest | undefined;
  let listener: Hl7Listener | undefined;
  let gateway: GatewayUnderTest | undefined;
  try {
    [orthanc, listener] = await Promise.all([startOrthanc(), startHl7Listener({ responses: ['aa'] })]);
    const config = peerConfig({
      pacsPort: orthanc.dicomPort,
      risPort: listener.port,
      ackTimeoutSeconds: 30,
      rules: [
        {
          name: 'chest',
          match: { attributes: { Modality: { oneOf: ['CR', 'DX'] } } },
          action: { model: name, outputs: ['sc'], pacs: [PACS_NAME], ris: [RIS_NAME], priority: 'normal' },
        },
      ],
    });
    gateway = await startGateway({
      ...config,
      models: { [name]: modelDir },
      inference: { defaultModel: name, workers: o.workers, engine, backend: 'wasm' },
      assembly: { quietPeriodSeconds: o.quiet },
      logging: { level: 'info', format: 'json' },
    });
    const g = gateway;
    const perStudyTimeout = name === 'demo' ? 60_000 : 300_000;
    for (const s of warm) {
      const sent = await storescu(g.port, [s.file]);
      if (sent.code !== 0) throw new Error(`storescu failed: ${sent.stderr}`);
      await waitReported(g, s.studyInstanceUid, perStudyTimeout);
    }
    log(`${name}: warm`);

    for (const s of sequential) {
      const sent = await storescu(g.port, [s.file]);
      if (sent.code !== 0) throw new Error(`storescu failed: ${sent.stderr}`);
      await waitReported(g, s.studyInstanceUid, perStudyTimeout);
    }
    const times = storeTimes(g.workDir);
    const latencies = sequential.map((s) => {
      const t = times.get(s.studyInstanceUid);
      if (!t) throw new Error(`no RIS delivery recorded for ${s.studyInstanceUid}`);
      return t.risDone - t.lastReceived;
    });
    const sums = sequential.map((s) => stageSum(g.logs, s.studyInstanceUid));
    const ratios = sequential.map(
      (_, i) => ((latencies[i] as number) - o.quiet * 1000) / (sums[i]?.total ?? Number.NaN),
    );
    const sorted = [...latencies].sort((a, b) => a - b);
    const perStage: Record<string, number> = {};
    for (const stage of ['decode', 'explain', 'write', 'pacs', 'ris'])
      perStage[stage] = Math.round(median(sums.map((x) => x.stages[stage] ?? 0)) * 10) / 10;
    log(
      `${name}: latency p50 ${percentile(sorted, 0.5)} ms, p95 ${percentile(sorted, 0.95)} ms; stage sum median ${median(sums.map((x) => x.total)).toFixed(0)} ms`,
    );

    // Burst: reset the peak RSS, then 4 storescu processes side by side.
    writeFileSync(`/proc/${g.pid}/clear_refs`, '5');
    const rssBefore = procStatus(g.pid, 'VmRSS');
    const quarters = [0, 1, 2, 3].map((q) => burst.filter((_, i) => i % 4 === q).map((s) => s.file));
    const sends = await Promise.all(quarters.map((files) => storescu(g.port, files)));
    for (const sent of sends) if (sent.code !== 0) throw new Error(`storescu failed: ${sent.stderr}`);
    log(`${name}: ${burst.length} studies sent; waiting for every RIS report`);
    for (const s of burst) await waitReported(g, s.studyInstanceUid, perStudyTimeout * 10);
    const peak = procStatus(g.pid, 'VmHWM');
    const all = storeTimes(g.workDir);
    const first = Math.min(...burst.map((s) => all.get(s.studyInstanceUid)?.lastReceived ?? Number.POSITIVE_INFINITY));
    const last = Math.max(...burst.map((s) => all.get(s.studyInstanceUid)?.risDone ?? Number.NEGATIVE_INFINITY));
    const seconds = (last - first) / 1000;
    log(`${name}: burst of ${burst.length} in ${seconds.toFixed(1)} s, peak RSS ${(peak / 1048576).toFixed(0)} MiB`);
    const withoutQuiet = sorted.map((l) => l - o.quiet * 1000);
    return {
      model: name,
      engine,
      latency: {
        studies: sequential.length,
        p50Ms: percentile(sorted, 0.5),
        p95Ms: percentile(sorted, 0.95),
        p50WithoutQuietMs: percentile(withoutQuiet, 0.5),
        p95WithoutQuietMs: percentile(withoutQuiet, 0.95),
      },
      stages: { medianSumMs: Math.round(median(sums.map((x) => x.total))), medianPerStageMs: perStage },
      overheadRatio: Math.round(median(ratios) * 100) / 100,
      burst: {
        studies: burst.length,
        seconds,
        studiesPerMinute: Math.round((burst.length / seconds) * 60 * 10) / 10,
        peakRssBytes: peak,
        rssBeforeBytes: rssBefore,
      },
    };
  } finally {
    await gateway?.stop();
    await Promise.all([orthanc?.dispose(), listener?.stop()]);
  }
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  const work = mkdtempSync(path.join(os.tmpdir(), 'cxr-e2e-bench-'));
  const started = new Date();
  const results: ModelResult[] = [];
  try {
    for (const name of o.models) {
      const dir =
        name === 'demo' ? path.join(ROOT, 'models/demo') : name === 'densenet201' ? densenet201Dir(work) : name;
      for (const engine of o.engines) results.push(await runModel(path.basename(name), engine, dir, o, work));
    }
  } finally {
    if (!o.keep) rmSync(work, { recursive: true, force: true });
  }
  const mib = (b: number) => `${(b / 1048576).toFixed(0)} MiB`;
  const lines = [
    `node dist/bench/end-to-end.js ${process.argv.slice(2).join(' ')}: ${started.toISOString()}, ${((Date.now() - started.getTime()) / 1000).toFixed(0)} s`,
    `${os.cpus()[0]?.model ?? 'cpu'} x ${os.cpus().length}, ${mib(os.totalmem())}; node ${process.version}; load ${os
      .loadavg()
      .map((x) => x.toFixed(2))
      .join(
        ' ',
      )}; ${o.workers} inference worker(s) (tfjs: wasm; onnxruntime: cpu provider), quiet period ${o.quiet} s, phantoms ${o.size} px`,
    '',
    '| model | engine | latency p50 ms | latency p95 ms | p50 / p95 without the quiet period | median sum of stage times ms | overhead ratio | burst studies | studies/min | peak RSS (burst) |',
    '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...results.map(
      (r) =>
        `| ${r.model} | ${r.engine} | ${r.latency.p50Ms} | ${r.latency.p95Ms} | ${r.latency.p50WithoutQuietMs} / ${r.latency.p95WithoutQuietMs} | ${r.stages.medianSumMs} | ${r.overheadRatio} | ${r.burst.studies} | ${r.burst.studiesPerMinute} | ${mib(r.burst.peakRssBytes)} (before: ${mib(r.burst.rssBeforeBytes)}) |`,
    ),
    '',
    'Median stage times per study (ms):',
    ...results.map(
      (r) =>
        `- ${r.model} (${r.engine}): ${Object.entries(r.stages.medianPerStageMs)
          .map(([k, v]) => `${k} ${v}`)
          .join(', ')}`,
    ),
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
  if (o.jsonOut) writeFileSync(o.jsonOut, JSON.stringify({ options: o, results }, null, 2));
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exitCode = 1;
});
