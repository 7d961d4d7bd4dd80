// Copies the runtime closure of the webgpu bench into a bundle's node_modules, as small as it can run:
//
//   node dist/bench/webgpu/bundle-modules.js TARGET_NODE_MODULES
//
// The full tree is several hundred MB (@tensorflow/tfjs alone 142 MB of browser bundles, sources and maps;
// `webgpu` 132 MB of dawn.node for five platforms), and the device machine takes 64 MiB. So:
// - @tensorflow/* packages keep package.json and their Node entry (`main`, one CommonJS file each); their
//   dependencies are what that file require()s, not package.json's list (which has the converter CLI's).
// - `webgpu` keeps index.js and the linux-x64 dawn.node only (its dependencies are build and type tools).
// - Other packages are copied whole, without maps, TypeScript declarations and docs, and bring their
//   package.json dependencies.
// The smoke test in make-bundle.sh runs the bench from the unpacked bundle, which shows nothing is missing.

import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { builtinModules } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const ENTRY_PACKAGES = ['@tensorflow/tfjs', '@tensorflow/tfjs-backend-webgpu', 'webgpu', 'zod'];
const SKIPPED_FILES = /\.(map|d\.ts|d\.cts|d\.mts|md|ts)$/;
const BUILTINS = new Set(builtinModules);

interface PackageJson {
  name: string;
  version: string;
  main?: string;
  dependencies?: Record<string, string>;
}

/** The package directory that `name` resolves to from `fromDir`, the way Node would find it. */
function packageDir(name: string, fromDir: string): string {
  for (let dir = fromDir; ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, 'node_modules', name);
    if (existsSync(path.join(candidate, 'package.json'))) return candidate;
    if (path.dirname(dir) === dir) throw new Error(`cannot find package ${name} from ${fromDir}`);
  }
}

/** Bare package names a CommonJS file require()s (its own files and Node's builtins left out). */
function requiredPackages(file: string): string[] {
  const names = new Set<string>();
  for (const match of readFileSync(file, 'utf8').matchAll(/require\(['"]([^'"./][^'"]*)['"]\)/g)) {
    const spec = match[1] ?? '';
    const name = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : (spec.split('/')[0] ?? '');
    if (!BUILTINS.has(name) && !name.startsWith('node:')) names.add(name);
  }
  return [...names];
}

function copyTree(from: string, to: string): number {
  let bytes = 0;
  for (const entry of readdirSync(from, { withFileTypes: true })) {
    const source = path.join(from, entry.name);
    if (entry.isDirectory()) {
      if (entry.name === 'node_modules' || entry.name === 'test' || entry.name === 'tests') continue;
      bytes += copyTree(source, path.join(to, entry.name));
    } else if (entry.isFile() && !SKIPPED_FILES.test(entry.name)) {
      mkdirSync(to, { recursive: true });
      copyFileSync(source, path.join(to, entry.name));
      bytes += statSync(source).size;
    }
  }
  return bytes;
}

function copyFiles(fromDir: string, toDir: string, files: string[]): number {
  let bytes = 0;
  for (const file of files) {
    const target = path.join(toDir, file);
    mkdirSync(path.dirname(target), { recursive: true });
    copyFileSync(path.join(fromDir, file), target);
    bytes += statSync(target).size;
  }
  return bytes;
}

function main(): void {
  const target = process.argv[2];
  if (target === undefined) throw new Error('usage: bundle-modules TARGET_NODE_MODULES');
  const done = new Map<string, { name: string; version: string; bytes: number }>();
  const queue: Array<{ name: string; from: string }> = ENTRY_PACKAGES.map((name) => ({ name, from: ROOT }));
  while (queue.length > 0) {
    const { name, from } = queue.shift() as { name: string; from: string };
    let dir: string;
    try {
      dir = packageDir(name, from);
    } catch {
      // The require() scan also sees names in comments (tfjs-core mentions require('xor4096')) and optional
      // requires inside try blocks; the smoke test shows whether a real one is missing.
      process.stderr.write(`not found, left out: ${name} (required from ${path.relative(ROOT, from) || '.'})\n`);
      continue;
    }
    if (done.has(dir)) continue;
    const pkg = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as PackageJson;
    // Nested copies (node_modules/x/node_modules/y) keep their place relative to the root's node_modules.
    const out = path.join(target, path.relative(path.join(ROOT, 'node_modules'), dir));
    let bytes: number;
    let deps: string[];
    if (name.startsWith('@tensorflow/')) {
      const main = pkg.main ?? 'index.js';
      bytes = copyFiles(dir, out, ['package.json', main]);
      deps = requiredPackages(path.join(dir, main));
    } else if (name === 'webgpu') {
      bytes = copyFiles(dir, out, ['package.json', 'index.js', 'LICENSE.md', 'dist/linux-x64/dawn.node']);
      deps = [];
    } else {
      bytes = copyTree(dir, out);
      deps = Object.keys(pkg.dependencies ?? {});
    }
    done.set(dir, { name, version: pkg.version, bytes });
    for (const dep of deps) queue.push({ name: dep, from: dir });
  }
  let total = 0;
  for (const { name, version, bytes } of done.values()) {
    total += bytes;
    process.stderr.write(`${name}@${version}: ${(bytes / 1048576).toFixed(2)} MiB\n`);
  }
  process.stderr.write(`node_modules: ${done.size} packages, ${(total / 1048576).toFixed(1)} MiB uncompressed\n`);
}

main();
