import test from 'ava';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { finished } from 'node:stream/promises';
import { SpoolFileWriter } from '../../src/store/spool.js';

// The file sink at the end of the C-STORE receive path (StoreBypass writes socket slices into it).

const dir = mkdtempSync(path.join(os.tmpdir(), 'spool-writer-'));
let n = 0;
const nextPath = () => path.join(dir, `${(n += 1)}.part`);

function chunk(size: number, seed: number): Buffer {
  const b = Buffer.alloc(size);
  for (let i = 0; i < size; i += 1) b[i] = (i * 7 + seed) & 0xff;
  return b;
}

/** Writes the chunks the way StoreBypass does: waiting for 'drain' whenever write() says so. */
async function writeAll(writer: SpoolFileWriter, chunks: Buffer[]): Promise<void> {
  for (const c of chunks) {
    if (!writer.write(c)) await once(writer, 'drain');
  }
}

test('with early writeback, the file holds the header and every byte, in order, once finished', async (t) => {
  const header = Buffer.from('HEADER--');
  const chunks = Array.from({ length: 160 }, (_, i) => chunk(65536 - (i % 5), i));
  const filePath = nextPath();
  const writer = new SpoolFileWriter(filePath, header, { highWaterMark: 512 * 1024, writebackBytes: 256 * 1024 });
  await writeAll(writer, chunks);
  writer.end();
  await finished(writer);
  t.true(readFileSync(filePath).equals(Buffer.concat([header, ...chunks])));
  t.is(writer.bytesWritten, header.length + chunks.reduce((s, c) => s + c.length, 0));
});

test('without writeback (0) it behaves the same', async (t) => {
  const chunks = Array.from({ length: 20 }, (_, i) => chunk(100_000, i));
  const filePath = nextPath();
  const writer = new SpoolFileWriter(filePath, Buffer.alloc(0), { writebackBytes: 0 });
  await writeAll(writer, chunks);
  writer.end();
  await finished(writer);
  t.true(readFileSync(filePath).equals(Buffer.concat(chunks)));
});

test('destroyed while writes and background syncs are in flight: it closes cleanly and reports no success', async (t) => {
  const filePath = nextPath();
  const writer = new SpoolFileWriter(filePath, Buffer.alloc(0), {
    highWaterMark: 8 * 1024 * 1024,
    writebackBytes: 64 * 1024,
  });
  for (let i = 0; i < 64; i += 1) writer.write(chunk(65536, i));
  await new Promise((resolve) => setTimeout(resolve, 5));
  const closed = once(writer, 'close');
  writer.destroy();
  await closed;
  await t.throwsAsync(finished(writer));
  t.true(existsSync(filePath)); // removing it is the caller's job (InstanceIngest's abandon)
});

test('ended while a background sync is still running: the final fsync waits for it and finishes', async (t) => {
  const filePath = nextPath();
  const writer = new SpoolFileWriter(filePath, Buffer.alloc(0), { writebackBytes: 1 });
  const chunks = Array.from({ length: 8 }, (_, i) => chunk(4096, i));
  for (const c of chunks) writer.write(c);
  writer.end();
  await finished(writer);
  t.true(readFileSync(filePath).equals(Buffer.concat(chunks)));
});
