// What the DenseNet benches (densenet.ts, lrp-instructions.ts) share: the network they measure (random torchvision
// weights exported by tools/bench_torch_densenet.py, 3 classes, ImageNet normalisation) and how their options read,
// so that both measure the same thing under the same names.
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DENSENET_VARIANTS, namedDenseNet } from '../src/inference/densenet-architecture.js';
import { DenseNet } from '../src/inference/densenet.js';
import { readSafetensors, type SafetensorsEntry } from '../src/inference/safetensors.js';
import { checkDenseNetWeights } from '../src/inference/weight-import.js';
import { COMPOSITE_NAMES, type CompositeName } from '../src/lrp/composites.js';

export type Arch = keyof typeof DENSENET_VARIANTS;

export const CLASSES = ['COVID-19', 'pneumonia', 'normal'];
export const NORMALISATION = { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] };
export const PYTHON = '/usr/bin/python3';
export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const TOOLS = path.join(ROOT, 'tools');
export const TORCH_BENCH = path.join(TOOLS, 'bench_torch_densenet.py');

/** A comma-separated option as its non-empty items. */
export function listOption(value: string | undefined): string[] {
  return (value ?? '')
    .split(',')
    .map((x) => x.trim())
    .filter((x) => x !== '');
}

export function integerOption(value: string | undefined, name: string, min: number): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw new Error(`${name} needs an integer >= ${min}, got ${value}`);
  return n;
}

export function archOption(value: string | undefined): Arch {
  if (!value || !(value in DENSENET_VARIANTS))
    throw new Error(`--arch: one of ${Object.keys(DENSENET_VARIANTS).join(', ')}`);
  return value as Arch;
}

export function compositesOption(value: string | undefined): CompositeName[] {
  const names = listOption(value);
  for (const n of names)
    if (!(COMPOSITE_NAMES as readonly string[]).includes(n))
      throw new Error(`--composites: unknown composite ${n} (${COMPOSITE_NAMES.join(', ')})`);
  return names as CompositeName[];
}

/** Runs a command from the repository root, stdout captured, stderr passed through; throws on failure. */
export function runCaptured(command: string, args: string[], timeoutMs: number): string {
  const result = spawnSync(command, args, {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'inherit'],
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
    timeout: timeoutMs,
    env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1' },
  });
  if (result.error) throw result.error;
  if (result.status !== 0)
    throw new Error(
      `${path.basename(command)} ${args.slice(0, 2).join(' ')} exited with ${result.status ?? result.signal}`,
    );
  return result.stdout;
}

/** The last line of `stdout` that is a JSON object (the tools print progress before it). */
export function lastJson(stdout: string): Record<string, unknown> {
  for (const line of stdout.trim().split('\n').reverse())
    if (line.startsWith('{')) return JSON.parse(line) as Record<string, unknown>;
  throw new Error(`no JSON line in output: ${stdout.slice(-500)}`);
}

/**
 * PyTorch's reference on the CPU for one batch size: tools/bench_torch_densenet.py on the weights file, forward and
 * forward + gradient x input, `repeats` timed runs; its JSON line (ms_per_image_forward, ms_per_image_grad_x_input...).
 */
export function torchCpuReference(
  o: { arch: Arch; seed: number; size: number; threads: number },
  weightsFile: string,
  batch: number,
  repeats: number,
  timeoutMs: number,
): Record<string, unknown> {
  return lastJson(
    runCaptured(
      PYTHON,
      [
        TORCH_BENCH,
        '--arch',
        o.arch,
        '--weights',
        weightsFile,
        '--seed',
        String(o.seed),
        '--size',
        String(o.size),
        '--batch',
        String(batch),
        '--repeats',
        String(repeats),
        '--threads',
        String(o.threads),
        '--grad-x-input',
        '--json',
      ],
      timeoutMs,
    ),
  );
}

/**
 * Runs `script` (a bench script, again) as a child with `args`: its stdout is kept, its stderr passed through live
 * and kept; a child still running after `timeoutMs` is killed. `exit` says how it ended, for the report.
 */
export function runScriptChild(
  script: string,
  args: readonly string[],
  timeoutMs: number,
): Promise<{ stdout: string; stderr: string; exit: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [script, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
      process.stderr.write(d);
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ stdout, stderr, exit: signal ? `killed by ${signal}` : `exit code ${code}` });
    });
  });
}

/**
 * Writes random torchvision weights (torch.manual_seed(seed), CLASSES.length classes) to `file` with
 * tools/bench_torch_densenet.py, which also times one forward pass of `size` at `threads` threads.
 */
export function exportRandomWeights(
  o: { arch: Arch; seed: number; size: number; threads: number },
  file: string,
  timeoutMs: number,
): void {
  runCaptured(
    PYTHON,
    [
      TORCH_BENCH,
      '--arch',
      o.arch,
      '--num-classes',
      String(CLASSES.length),
      '--seed',
      String(o.seed),
      '--size',
      String(o.size),
      '--batch',
      '1',
      '--repeats',
      '1',
      '--warmup',
      '0',
      '--threads',
      String(o.threads),
      '--export-weights',
      file,
      '--json',
    ],
    timeoutMs,
  );
}

// The input exactly as tools/bench_torch_densenet.py makes it (same generator, same seed), and PyTorch's logits for it.
const INPUT_SNIPPET = `
import sys
from collections import OrderedDict
tools, weights, arch, n, size, seed, threads, out = sys.argv[1:9]
sys.path.insert(0, tools)
import torch
import bench_torch_densenet as b
from torch_to_safetensors import write_safetensors
torch.set_num_threads(int(threads))
model = b.build_model(arch, 3, int(seed))
b.load_weights(model, weights)
model.eval()
g = torch.Generator().manual_seed(int(seed) + 1)
x = torch.randn(int(n), 3, int(size), int(size), generator=g)
with torch.no_grad():
    logits = model(x)
write_safetensors(out, OrderedDict(input=x, logits=logits), {"recipe": "torch.randn(N,3,S,S, generator=torch.Generator().manual_seed(seed+1))"})
`;

/**
 * Writes `n` inputs exactly as tools/bench_torch_densenet.py makes them (torch.randn from
 * torch.Generator().manual_seed(seed + 1)) and PyTorch's logits for them into the safetensors file `ioFile`.
 */
export function writeTorchInput(
  o: { arch: Arch; seed: number; size: number; threads: number },
  weightsFile: string,
  n: number,
  ioFile: string,
  timeoutMs: number,
): void {
  runCaptured(
    PYTHON,
    [
      '-c',
      INPUT_SNIPPET,
      TOOLS,
      weightsFile,
      o.arch,
      String(n),
      String(o.size),
      String(o.seed),
      String(o.threads),
      ioFile,
    ],
    timeoutMs,
  );
}

/**
 * The DenseNet of a weights file; `edit` may change the host tensors first (lrp-instructions.ts negates
 * BatchNorm scales).
 */
export function loadDenseNet(
  arch: Arch,
  file: string,
  edit?: (tensors: Map<string, SafetensorsEntry>) => void,
): DenseNet {
  const architecture = namedDenseNet(arch, CLASSES.length);
  const tensors = readSafetensors(readFileSync(file), file).tensors;
  edit?.(tensors);
  return DenseNet.fromHostWeights(architecture, checkDenseNetWeights(tensors, architecture, file));
}
