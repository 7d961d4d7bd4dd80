// tools/torch_to_safetensors.py, run as a hospital runs it: Debian's /usr/bin/python3, which is the python that
// can import torch and torchvision here (python3-torch, python3-torchvision); the `python3` first on PATH is a
// separate install without them.
import test from 'ava';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { readSafetensors } from '../../src/inference/safetensors.js';
import { runCommand } from '../helpers/run-command.js';
import { FIXTURE_DIR } from '../helpers/tiny-densenet.js';

const PYTHON = '/usr/bin/python3';
const TOOLS = path.resolve(FIXTURE_DIR, '../../../tools');
const SCRIPT = path.join(TOOLS, 'torch_to_safetensors.py');

function convert(args: string[]) {
  return runCommand(PYTHON, [SCRIPT, ...args], { timeoutMs: 120_000 });
}

function tensorsOf(file: string) {
  return readSafetensors(readFileSync(file), file);
}

function outFile(name = 'out.safetensors'): string {
  return path.join(mkdtempSync(path.join(os.tmpdir(), 'convert-')), name);
}

/** Every tensor of `b` has the name, shape and values of the one in `a`, in the same order. */
function sameTensors(file: string, reference: string): string | undefined {
  const a = tensorsOf(reference).tensors;
  const b = tensorsOf(file).tensors;
  if ([...a.keys()].join() !== [...b.keys()].join()) return `names differ: ${[...b.keys()].slice(0, 3).join()}...`;
  for (const [name, t] of a) {
    const u = b.get(name);
    if (!u || u.shape.join() !== t.shape.join()) return `${name}: shape`;
    if (u.data.some((v, i) => v !== t.data[i])) return `${name}: values`;
  }
  return undefined;
}

for (const fixture of ['tiny.safetensors', 'tiny-legacy-keys.safetensors', 'tiny-module-prefix.safetensors']) {
  test.serial(`a safetensors state dict (${fixture}) converts to the same tensors under the same names`, async (t) => {
    const out = outFile();
    const result = await convert([path.join(FIXTURE_DIR, fixture), out]);
    t.is(result.code, 0, result.stderr);
    t.regex(result.stdout, /safetensors state_dict, 81 entries/);
    t.is(sameTensors(out, path.join(FIXTURE_DIR, fixture)), undefined);
    t.like(tensorsOf(out).metadata, { format: 'pt', source: fixture, source_format: 'safetensors' });
  });
}

test.serial('a .pt state dict still converts, to what the safetensors input gives', async (t) => {
  const out = outFile();
  const result = await convert([path.join(FIXTURE_DIR, 'tiny-state-dict.pt'), out]);
  t.is(result.code, 0, result.stderr);
  t.regex(result.stdout, /state_dict, 97 entries/);
  t.is(sameTensors(out, path.join(FIXTURE_DIR, 'tiny.safetensors')), undefined);
});

test.serial('a safetensors input is checked against the architecture like a .pt one', async (t) => {
  const result = await convert([path.join(FIXTURE_DIR, 'tiny.safetensors'), outFile(), '--arch', 'densenet121']);
  t.is(result.code, 1);
  t.regex(result.stderr, /checkpoint does not match torchvision densenet121 with 3 classes/);
  t.regex(result.stderr, /features\.conv0\.weight: checkpoint \[16, 3, 7, 7\] vs densenet121 \[64, 3, 7, 7\]/);
});

test.serial(
  'a full DenseNet-121 safetensors state dict (with its int64 counters) passes --arch densenet121',
  async (t) => {
    // Written by the script's own writer after torch's state_dict, plus the I64 num_batches_tracked counters that
    // other writers keep: they must be skipped, not refused.
    const input = outFile('densenet121.safetensors');
    const make = await runCommand(
      PYTHON,
      [
        '-c',
        [
          'import sys, json, struct, torch, torchvision',
          `sys.path.insert(0, ${JSON.stringify(TOOLS)})`,
          'from torch_to_safetensors import write_safetensors',
          'torch.manual_seed(0)',
          'sd = torchvision.models.densenet121(weights=None, num_classes=3).state_dict()',
          "write_safetensors(sys.argv[1], {k: v for k, v in sd.items() if v.is_floating_point()}, {'format': 'pt'})",
          // Append one I64 counter by hand (the writer writes floats only).
          'raw = open(sys.argv[1], "rb").read(); n = struct.unpack("<Q", raw[:8])[0]',
          'header = json.loads(raw[8:8 + n]); data = raw[8 + n:]',
          "header['features.norm0.num_batches_tracked'] = {'dtype': 'I64', 'shape': [], 'data_offsets': [len(data), len(data) + 8]}",
          "h = json.dumps(header).encode(); h += b' ' * ((-len(h)) % 8)",
          'open(sys.argv[1], "wb").write(struct.pack("<Q", len(h)) + h + data + struct.pack("<q", 7))',
        ].join('\n'),
        input,
      ],
      { timeoutMs: 120_000 },
    );
    t.is(make.code, 0, make.stderr);
    const out = outFile();
    const result = await convert([input, out, '--arch', 'densenet121']);
    t.is(result.code, 0, result.stderr);
    t.regex(result.stdout, /matches torchvision densenet121 with 3 classes/);
    t.regex(result.stdout, /skipped 1 num_batches_tracked counter/);
    const written = tensorsOf(out);
    t.is(written.tensors.size, 606);
    t.like(written.metadata, { arch: 'densenet121', num_classes: '3', source_format: 'safetensors' });
  },
);

test.serial(
  'a file named .safetensors that is not one is refused with a clear message, not a pickle error',
  async (t) => {
    const bad = outFile('damaged.safetensors');
    const header = Buffer.alloc(8);
    header.writeBigUInt64LE(1_000_000n);
    writeFileSync(bad, Buffer.concat([header, Buffer.from('{"a":')]));
    const result = await convert([bad, outFile()]);
    t.is(result.code, 1);
    t.regex(result.stderr, /damaged\.safetensors: not a safetensors file .* damaged or was renamed/);
    t.notRegex(result.stderr, /pickle|Traceback/i);
  },
);
