// Size and encode time of the heatmap Secondary Capture per encoding (secondaryCapture.encoding, issue 19), for
// chest-like sources of 1024 x 1024 and 2048 x 2048, with explicit-le (uncompressed) as the in-run reference.
//
//   node dist/bench/sc-encoding.js [--runs 5] [--sizes 1024,2048] [--seed 19] [--json]
//
// The sources are phantoms (src/phantoms: a PA chest with a planted pneumonia, burned-in markers), 12-bit, written
// uncompressed. Each goes through the pipeline's own analysis path (analyseImages: decode, preprocess, one forward
// pass with LRP, the heatmap renderer with its banner) on the small test DenseNet (test/helpers/tiny-densenet.ts, CPU
// backend), so the picture is a real LRP overlay, not a synthetic one. Then writeSecondaryCapture() (the whole
// writer: attributes, pixel encoding, Part 10 serialisation) runs per encoding: one untimed warm-up, then --runs
// timed runs; the table shows medians and each encoding's size and time as a ratio of explicit-le's in this run.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { analyseImages } from '../src/analysis/analyse-images.js';
import { createTfjsEngine } from '../src/engines/tfjs-engine.js';
import { phantomIdentity, phantomPart10 } from '../src/phantoms/phantom-dicom.js';
import { phantomSpecFor } from '../src/phantoms/phantom-spec.js';
import { renderPhantom } from '../src/phantoms/render-phantom.js';
import type { RgbImage } from '../src/reporting/heatmap-overlay.js';
import { outputModelInfo } from '../src/reporting/report-inputs.js';
import { prepareScEncoding } from '../src/reporting/sc-encoding.js';
import { SC_ENCODINGS, type ScEncoding } from '../src/reporting/sc-encoding-types.js';
import { writeSecondaryCapture } from '../src/reporting/secondary-capture.js';
import { tinyModelDir } from '../test/helpers/tiny-densenet.js';

interface Options {
  runs: number;
  sizes: number[];
  seed: number;
  json: boolean;
}

function parseArgs(argv: string[]): Options {
  const o: Options = { runs: 5, sizes: [1024, 2048], seed: 19, json: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--runs') o.runs = Number(argv[++i]);
    else if (a === '--sizes') o.sizes = String(argv[++i]).split(',').map(Number);
    else if (a === '--seed') o.seed = Number(argv[++i]);
    else if (a === '--json') o.json = true;
    else throw new Error(`unknown argument ${a}`);
  }
  if (!Number.isInteger(o.runs) || o.runs < 1) throw new Error('--runs must be a positive integer');
  return o;
}

interface Row {
  source: string;
  picture: string;
  encoding: ScEncoding;
  bytes: number;
  ms: number;
  sizeRatio: number;
  timeRatio: number;
}

const median = (values: number[]): number => {
  const s = [...values].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[m] ?? 0) : ((s[m - 1] ?? 0) + (s[m] ?? 0)) / 2;
};

async function main(): Promise<void> {
  const options = parseArgs(process.argv.slice(2));
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bench-sc-'));
  const engine = await createTfjsEngine({
    modelDir: tinyModelDir(),
    backend: 'cpu',
    allowSoftwareGpu: false,
    lrp: { composite: 'isnet' },
  });
  const model = outputModelInfo(engine.manifest);
  for (const encoding of SC_ENCODINGS) await prepareScEncoding(encoding);
  const rows: Row[] = [];
  try {
    for (const size of options.sizes) {
      const spec = phantomSpecFor(0, options.seed, { size, classes: ['pneumonia'], textMarkers: true, apFraction: 0 });
      const phantom = renderPhantom(spec);
      const file = path.join(dir, `phantom-${size}.dcm`);
      writeFileSync(file, phantomPart10(phantom, phantomIdentity(spec, options.seed), 'explicit'));
      const [analysed] = await analyseImages(engine, [{ id: size, path: file }], {
        kind: 'explain',
        target: 'predicted',
        heatmap: {},
      });
      if (analysed?.kind !== 'analysed' || analysed.heatmap === undefined)
        throw new Error(`the ${size} source was not analysed`);
      const { overlay, summary } = analysed.heatmap;
      const picture: RgbImage = overlay.image;
      const write = (encoding: ScEncoding) =>
        writeSecondaryCapture({
          source: analysed.bytes,
          image: picture,
          model,
          classification: analysed.classification,
          explanation: summary,
          revision: 0,
          createdAt: new Date(0),
          encoding: { encoding },
        }).bytes.length;
      const measured = new Map<ScEncoding, { bytes: number; ms: number }>();
      for (const encoding of SC_ENCODINGS) {
        let bytes = write(encoding);
        const times: number[] = [];
        for (let r = 0; r < options.runs; r++) {
          const t0 = performance.now();
          bytes = write(encoding);
          times.push(performance.now() - t0);
        }
        measured.set(encoding, { bytes, ms: median(times) });
      }
      const reference = measured.get('explicit-le');
      if (reference === undefined) throw new Error('no explicit-le reference');
      for (const [encoding, m] of measured)
        rows.push({
          source: `${phantom.columns} x ${phantom.rows}`,
          picture: `${picture.columns} x ${picture.rows}`,
          encoding,
          bytes: m.bytes,
          ms: m.ms,
          sizeRatio: m.bytes / reference.bytes,
          timeRatio: m.ms / reference.ms,
        });
    }
  } finally {
    await engine.dispose();
    rmSync(dir, { recursive: true, force: true });
  }
  if (options.json) {
    process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
    return;
  }
  process.stdout.write(
    `runs ${options.runs} (medians), node ${process.version}, ${os.cpus()[0]?.model ?? 'cpu'} x ${os.cpus().length}\n\n`,
  );
  process.stdout.write(
    '| Source | SC picture | Encoding | SC size (MB) | Size vs explicit-le | Encode (ms) | Time vs explicit-le |\n',
  );
  process.stdout.write('| --- | --- | --- | ---: | ---: | ---: | ---: |\n');
  for (const r of rows)
    process.stdout.write(
      `| ${r.source} | ${r.picture} | ${r.encoding} | ${(r.bytes / 1e6).toFixed(2)} | ${r.sizeRatio.toFixed(2)} | ` +
        `${r.ms.toFixed(1)} | ${r.timeRatio.toFixed(2)} |\n`,
    );
}

await main();
