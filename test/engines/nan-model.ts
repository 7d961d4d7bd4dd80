// A model directory whose weights make every explanation NaN: the tiny fixture with one classifier weight NaN
// (and the manifest's checksum updated, so the folder passes every check a hospital's model would).
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { tinyModelDir } from '../helpers/tiny-densenet.js';

export function nanModelDir(tensor = 'classifier.weight'): string {
  const dir = tinyModelDir();
  const file = path.join(dir, 'weights.safetensors');
  const bytes = readFileSync(file);
  const headerLength = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + headerLength).toString('utf8')) as Record<
    string,
    { data_offsets: [number, number] }
  >;
  const entry = header[tensor];
  if (entry === undefined) throw new Error(`the fixture has no tensor ${tensor}`);
  bytes.writeFloatLE(Number.NaN, 8 + headerLength + entry.data_offsets[0]);
  writeFileSync(file, bytes);
  const manifestFile = path.join(dir, 'manifest.json');
  const manifest = JSON.parse(readFileSync(manifestFile, 'utf8')) as { weights: { sha256: string } };
  manifest.weights.sha256 = createHash('sha256').update(bytes).digest('hex');
  writeFileSync(manifestFile, JSON.stringify(manifest, null, 2));
  return dir;
}
