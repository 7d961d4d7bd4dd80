import test from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import {
  classifyStoreStatus,
  sendInstances,
  type InstanceResult,
  type ScuPeer,
  type StoreBatchResult,
} from '../../src/dimse/storage-scu.js';
import { createLogger, type Logger } from '../../src/logging/logger.js';
import { IMPLICIT_VR_LITTLE_ENDIAN, compressFile, makeImageFile, writeImageFile } from '../helpers/dicom-factory.js';
import { freePort } from '../helpers/ports.js';
import { datasetBytesOfPart10 } from '../helpers/raw-scu.js';
import { stallingPacs } from '../helpers/stalling-pacs.js';
import { makeSecondaryCapture } from '../export/secondary-capture-fixture.js';

const scratch = mkdtempSync(path.join(os.tmpdir(), 'scu-'));

// DCMTK's storescp is the peer: it can keep exactly what it received (+B bit-preserving, -F data set only),
// restrict transfer syntaxes, sleep, abort and refuse. (--sleep-during has no effect together with +B.) Like Orthanc, it has no bind-address option and
// listens on all interfaces; we only ever connect to it through 127.0.0.1.
interface StoreScp {
  port: number;
  dir: string;
  process: ChildProcess;
  log(): string;
  stop(): Promise<void>;
}

const peers: StoreScp[] = [];
test.after.always(async () => {
  await Promise.all(peers.map((p) => p.stop()));
});

async function startStoreScp(args: string[]): Promise<StoreScp> {
  const port = await freePort();
  const dir = mkdtempSync(path.join(scratch, 'received-'));
  const child = spawn('storescp', ['-v', '-aet', 'STORESCP', '-od', dir, ...args, String(port)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const peer: StoreScp = {
    port,
    dir,
    process: child,
    log: () => output,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 2000);
      await exited;
      clearTimeout(timer);
    },
  };
  peers.push(peer);
  // Listening once a TCP connection succeeds (storescp logs it as an association that never came).
  for (let i = 0; ; i += 1) {
    const up = await new Promise<boolean>((resolve) => {
      const socket = net.connect({ host: '127.0.0.1', port }, () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (up) return peer;
    if (i > 200) throw new Error(`storescp did not start: ${output}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

function peerAt(port: number, overrides: Partial<ScuPeer> = {}): ScuPeer {
  return {
    host: '127.0.0.1',
    port,
    calledAeTitle: 'STORESCP',
    callingAeTitle: 'CXR_GATEWAY',
    connectTimeoutMs: 2000,
    responseTimeoutMs: 5000,
    ...overrides,
  };
}

function captureLogger(): { logger: Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString().split('\n'))
        if (line.trim() !== '') lines.push(JSON.parse(line) as Record<string, unknown>);
      callback();
    },
  });
  return { logger: createLogger({ level: 'debug', format: 'json', stream }), lines };
}

function results(outcome: StoreBatchResult): InstanceResult[] {
  if ('transient' in outcome) throw new Error(`batch failed: ${outcome.transient.kind}: ${outcome.transient.reason}`);
  return outcome.results;
}

function received(scp: StoreScp, sopInstanceUid: string): Buffer {
  const name = readdirSync(scp.dir).find((n) => n.endsWith(`.${sopInstanceUid}`));
  if (name === undefined)
    throw new Error(`storescp has no file for ${sopInstanceUid}: ${readdirSync(scp.dir).join(', ')}`);
  return readFileSync(path.join(scp.dir, name));
}

function associationsAccepted(scp: StoreScp): number {
  return scp
    .log()
    .split('\n')
    .filter((l) => l.includes('Association Acknowledged')).length;
}

/** Four objects of one study: DX explicit (as a file), DX implicit, DX JPEG lossless, an RGB Secondary Capture. */
/** The Pixel Data value of a native Part 10 file: its last element, so the bytes after its 12-byte header. */
function nativePixelData(bytes: Buffer): Buffer {
  const tag = Buffer.from([0xe0, 0x7f, 0x10, 0x00]);
  const at = bytes.lastIndexOf(tag);
  if (at < 0) throw new Error('no Pixel Data');
  return bytes.subarray(at + 12);
}

async function mixedBatch() {
  const dir = mkdtempSync(path.join(scratch, 'batch-'));
  const explicit = await writeImageFile(dir, { seed: 1 });
  const studyInstanceUid = explicit.studyInstanceUid;
  const implicit = makeImageFile({ studyInstanceUid, transferSyntax: 'implicit', seed: 2, instanceNumber: 2 });
  const toCompress = await writeImageFile(dir, { studyInstanceUid, seed: 3, instanceNumber: 3 });
  const jpegPath = path.join(dir, 'jpeg-lossless.dcm');
  await compressFile(toCompress.path, jpegPath, 'jpeg-lossless-sv1');
  const jpeg = readFileSync(jpegPath);
  const sc = makeSecondaryCapture({ studyInstanceUid });
  return {
    items: [
      { path: explicit.path },
      { bytes: implicit.bytes, label: 'implicit' },
      { path: jpegPath },
      { bytes: sc.bytes, label: 'heatmap' },
    ],
    objects: [
      { uid: explicit.sopInstanceUid, bytes: explicit.bytes },
      { uid: implicit.sopInstanceUid, bytes: implicit.bytes },
      { uid: toCompress.sopInstanceUid, bytes: jpeg },
      { uid: sc.sopInstanceUid, bytes: sc.bytes },
    ],
    scPixels: sc.pixels,
    /** The compressed DX's pixels before compression (the end of its native data set). */
    nativePixels: nativePixelData(toCompress.bytes),
  };
}

test('sends a batch in one association, each object in its own transfer syntax and byte for byte', async (t) => {
  const scp = await startStoreScp(['+B', '-F', '+xa']);
  const batch = await mixedBatch();
  const { logger } = captureLogger();
  const outcome = results(await sendInstances(peerAt(scp.port), batch.items, { logger }));
  t.deepEqual(
    outcome.map((r) => [r.sopInstanceUid, r.outcome]),
    batch.objects.map((o) => [o.uid, 'stored']),
  );
  t.true(outcome.every((r) => r.outcome === 'stored' && r.status === 0));
  t.is(associationsAccepted(scp), 1, scp.log());
  for (const object of batch.objects) {
    const { dataset, transferSyntaxUid } = datasetBytesOfPart10(object.bytes);
    t.true(received(scp, object.uid).equals(dataset), `${object.uid} (${transferSyntaxUid}) arrived changed`);
  }
});

test('an SCP that takes only Implicit VR: uncompressed objects are re-encoded, a compressed one is decompressed', async (t) => {
  const scp = await startStoreScp(['+B', '-F', '+xi']);
  const batch = await mixedBatch();
  const { logger, lines } = captureLogger();
  const outcome = results(await sendInstances(peerAt(scp.port), batch.items, { logger }));
  t.deepEqual(
    outcome.map((r) => r.outcome),
    ['stored', 'stored', 'stored', 'stored'],
  );
  // The implicit object went as it was; the explicit ones were rewritten by dcmjs in Implicit VR, with the
  // same pixels.
  const implicit = batch.objects[1];
  if (!implicit) throw new Error('no implicit object');
  t.true(received(scp, implicit.uid).equals(datasetBytesOfPart10(implicit.bytes).dataset));
  const sc = batch.objects[3];
  if (!sc) throw new Error('no SC');
  const reencoded = received(scp, sc.uid);
  const original = datasetBytesOfPart10(sc.bytes).dataset;
  t.false(reencoded.equals(original));
  t.true(
    reencoded.subarray(reencoded.length - batch.scPixels.length).equals(batch.scPixels),
    'the SC pixels changed in re-encoding',
  );
  // The JPEG Lossless object arrives decompressed, its pixels those of the file before compression.
  const jpeg = batch.objects[2];
  if (!jpeg) throw new Error('no JPEG object');
  const decompressed = received(scp, jpeg.uid);
  t.true(
    decompressed.subarray(decompressed.length - batch.nativePixels.length).equals(batch.nativePixels),
    'the decompressed pixels are the original ones',
  );
  t.is(lines.filter((l) => l.event === 'DIMSE-1104' && l.to === IMPLICIT_VR_LITTLE_ENDIAN).length, 3);
  t.is(
    lines.filter((l) => l.event === 'DIMSE-1104' && l.from === '1.2.840.10008.1.2.4.70').length,
    1,
    'the decompression is logged with the syntax it came from',
  );
  t.is(associationsAccepted(scp), 1);
});

test('an SCP that takes the SOP class in no syntax we can send: not sent, naming the syntax', async (t) => {
  // JPEG 2000 only (a DCMTK association profile): neither the object's own syntax nor an uncompressed one.
  const profile = path.join(mkdtempSync(path.join(scratch, 'profile-')), 'j2k-only.cfg');
  writeFileSync(
    profile,
    [
      '[[TransferSyntaxes]]',
      '[J2KOnly]',
      'TransferSyntax1 = JPEG2000LosslessOnly',
      '[[PresentationContexts]]',
      '[DxJ2K]',
      'PresentationContext1 = DigitalXRayImageStorageForPresentation\\J2KOnly',
      'PresentationContext2 = SecondaryCaptureImageStorage\\J2KOnly',
      '[[Profiles]]',
      '[J2K]',
      'PresentationContexts = DxJ2K',
      '',
    ].join('\n'),
  );
  const scp = await startStoreScp(['+B', '-F', '-xf', profile, 'J2K']);
  const batch = await mixedBatch();
  const { logger } = captureLogger();
  const outcome = results(await sendInstances(peerAt(scp.port), batch.items, { logger }));
  const jpeg = outcome[2];
  t.is(jpeg?.outcome, 'not-sent');
  t.is(jpeg?.outcome === 'not-sent' ? jpeg.cause : undefined, 'no-accepted-context');
  t.regex(jpeg?.outcome === 'not-sent' ? jpeg.reason : '', /1\.2\.840\.10008\.1\.2\.4\.70/);
});

test('unreadable objects are reported as not sent, and alone they open no association', async (t) => {
  const port = await freePort(); // nothing listens: any connection attempt would make this a batch failure
  const { logger } = captureLogger();
  const outcome = results(
    await sendInstances(
      peerAt(port),
      [{ bytes: Buffer.from('not dicom at all'), label: 'junk' }, { path: path.join(scratch, 'missing.dcm') }],
      { logger },
    ),
  );
  t.deepEqual(
    outcome.map((r) => (r.outcome === 'not-sent' ? [r.source, r.cause] : [r.source, r.outcome])),
    [
      ['junk', 'unreadable'],
      [path.join(scratch, 'missing.dcm'), 'unreadable'],
    ],
  );
  const first = outcome[0];
  t.regex(first?.outcome === 'not-sent' ? first.reason : '', /not a DICOM Part 10 file/);
});

test('connection refused is a transient failure of the whole batch that names the address', async (t) => {
  const port = await freePort();
  const { logger } = captureLogger();
  const outcome = await sendInstances(peerAt(port), [{ bytes: makeImageFile().bytes }], { logger });
  if (!('transient' in outcome)) return t.fail('expected a batch failure');
  t.is(outcome.transient.kind, 'connection-refused');
  t.regex(outcome.transient.reason, new RegExp(`127\\.0\\.0\\.1:${port} \\(ECONNREFUSED\\)`));
});

test('a rejected association is a transient failure carrying the rejection', async (t) => {
  const scp = await startStoreScp(['--refuse']);
  const { logger } = captureLogger();
  const outcome = await sendInstances(peerAt(scp.port), [{ bytes: makeImageFile().bytes }], { logger });
  if (!('transient' in outcome)) return t.fail('expected a batch failure');
  t.is(outcome.transient.kind, 'association-rejected');
  t.deepEqual(outcome.transient.rejection, { permanent: true, source: 'service user', reason: 'no reason given' });
  t.regex(outcome.transient.reason, /STORESCP@127\.0\.0\.1:\d+ rejected the association from 'CXR_GATEWAY'/);
});

test('a peer that aborts after a C-STORE request ends the batch at once, keeping what was answered', async (t) => {
  const scp = await startStoreScp(['--abort-after']);
  const { logger } = captureLogger();
  const started = Date.now();
  const outcome = await sendInstances(
    peerAt(scp.port, { responseTimeoutMs: 10_000 }),
    [{ bytes: makeImageFile().bytes }, { bytes: Buffer.from('junk') }],
    { logger },
  );
  if (!('transient' in outcome)) return t.fail('expected a batch failure');
  t.is(outcome.transient.kind, 'association-aborted');
  t.regex(outcome.transient.reason, /aborted the association/);
  t.true(Date.now() - started < 5000, 'waited for the response timeout instead of acting on the A-ABORT');
  t.deepEqual(
    outcome.completed.map((r) => r.outcome),
    ['not-sent'],
  );
});

test('a peer that accepts TCP but never answers the association request times out', async (t) => {
  const sockets = new Set<net.Socket>();
  const silent = net.createServer((socket) => sockets.add(socket));
  await new Promise<void>((resolve) => silent.listen({ host: '127.0.0.1', port: 0 }, resolve));
  t.teardown(() => {
    for (const s of sockets) s.destroy();
    silent.close();
  });
  const { port } = silent.address() as net.AddressInfo;
  const { logger } = captureLogger();
  const outcome = await sendInstances(peerAt(port, { responseTimeoutMs: 1000 }), [{ bytes: makeImageFile().bytes }], {
    logger,
  });
  if (!('transient' in outcome)) return t.fail('expected a batch failure');
  t.is(outcome.transient.kind, 'association-timeout');
  t.regex(outcome.transient.reason, /did not answer the association request within 1 s/);
});

test('a C-STORE response slower than the response timeout is a transient response-timeout', async (t) => {
  const scp = await startStoreScp(['--sleep-during', '4']);
  const { logger } = captureLogger();
  const started = Date.now();
  const outcome = await sendInstances(
    peerAt(scp.port, { responseTimeoutMs: 1000 }),
    [{ bytes: makeImageFile().bytes }],
    { logger },
  );
  if (!('transient' in outcome)) return t.fail('expected a batch failure');
  t.is(outcome.transient.kind, 'response-timeout');
  t.regex(outcome.transient.reason, /did not answer within 1 s \(responseTimeoutSeconds\) while storing/);
  t.true(Date.now() - started < 3500);
});

test('the abort signal ends a transfer in progress as stopped', async (t) => {
  const scp = await startStoreScp(['--sleep-during', '4']);
  const { logger } = captureLogger();
  const controller = new AbortController();
  setTimeout(() => controller.abort(), 300);
  const started = Date.now();
  const outcome = await sendInstances(peerAt(scp.port), [{ bytes: makeImageFile().bytes }], {
    logger,
    signal: controller.signal,
  });
  if (!('transient' in outcome)) return t.fail('expected a batch failure');
  t.is(outcome.transient.kind, 'stopped');
  t.true(Date.now() - started < 2000);
});

test('the abort signal fired while a C-STORE waits for its response (60 s timeout) sends an A-ABORT and closes the connection at once', async (t) => {
  const pacs = await stallingPacs();
  t.teardown(() => pacs.close());
  const { logger } = captureLogger();
  const controller = new AbortController();
  const sending = sendInstances(peerAt(pacs.port, { responseTimeoutMs: 60_000 }), [{ bytes: makeImageFile().bytes }], {
    logger,
    signal: controller.signal,
  });
  // The C-STORE request is with the PACS, which never answers.
  await pacs.waitForData(1);
  const aborted = Date.now();
  controller.abort();
  const outcome = await sending;
  if (!('transient' in outcome)) return t.fail('expected a batch failure');
  t.is(outcome.transient.kind, 'stopped');
  t.true(Date.now() - aborted < 2000, `ended ${Date.now() - aborted} ms after the signal`);
  // The PACS saw the A-ABORT, then the connection close.
  await pacs.waitForClose(1);
  t.is(pacs.aborts, 1);
});

// A listener with a full accept queue: the kernel drops further SYNs, so a connect hangs as it does towards a
// host behind a firewall that drops packets. Node cannot listen without accepting; Python's socket module can.
const python = '/usr/bin/python3';
(existsSync(python) ? test : test.skip)(
  'a connection that cannot be established within the connect timeout is connect-timeout',
  async (t) => {
    const port = await freePort();
    const script = [
      'import socket, sys, time',
      's = socket.socket(); s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(0)',
      'c = socket.create_connection(("127.0.0.1", int(sys.argv[1])))',
      'print("ready", flush=True); time.sleep(30)',
    ].join('\n');
    const blocker = spawn(python, ['-c', script, String(port)], { stdio: ['ignore', 'pipe', 'inherit'] });
    t.teardown(() => blocker.kill('SIGKILL'));
    await new Promise<void>((resolve, reject) => {
      blocker.stdout.once('data', () => resolve());
      blocker.once('exit', () => reject(new Error('the accept-queue blocker exited')));
    });
    const { logger } = captureLogger();
    const started = Date.now();
    const outcome = await sendInstances(peerAt(port, { connectTimeoutMs: 800 }), [{ bytes: makeImageFile().bytes }], {
      logger,
    });
    if (!('transient' in outcome)) return t.fail('expected a batch failure');
    t.is(outcome.transient.kind, 'connect-timeout');
    t.regex(outcome.transient.reason, /no TCP connection to STORESCP@127\.0\.0\.1:\d+ within 0\.8 s/);
    t.true(Date.now() - started < 2000);
  },
);

test('C-STORE statuses: success, the warning codes, everything else a failure', (t) => {
  t.is(classifyStoreStatus(0x0000), 'stored');
  for (const warning of [0x0001, 0x0107, 0x0116, 0xb000, 0xb006, 0xb007])
    t.is(classifyStoreStatus(warning), 'warning', warning.toString(16));
  for (const failure of [0xa700, 0xa900, 0xc000, 0x0110, 0x0122, 0x0124, 0x0211, 0xfe00])
    t.is(classifyStoreStatus(failure), 'failed', failure.toString(16));
});
