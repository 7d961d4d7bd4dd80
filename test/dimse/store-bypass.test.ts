import test from 'ava';
import { Writable } from 'node:stream';
import { summariseCommand } from '../../src/dimse/command-set.js';
import { PduGuard } from '../../src/dimse/pdu-guard.js';
import { PduStreamParser } from '../../src/dimse/pdu-stream.js';
import { StoreBypass, type BypassLink } from '../../src/dimse/store-bypass.js';
import {
  CommandField,
  CommandTag,
  NO_DATA_SET,
  PduType,
  decodePDataTf,
  encodeCEchoRq,
  encodeCStoreRq,
  encodeCommand,
  encodePDataTf,
  encodePdu,
  encodeReleaseRq,
  fragmentMessage,
  type Pdv,
} from '../helpers/raw-scu.js';

/** The spool file: keeps what it is given; with `manual`, each write waits until `release()`. */
class FileStandIn extends Writable {
  readonly chunks: Buffer[] = [];
  private held: Array<() => void> = [];
  constructor(private readonly manual = false) {
    super({ highWaterMark: 4096 });
  }
  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.chunks.push(chunk);
    if (this.manual) this.held.push(() => callback());
    else callback();
  }
  /** Lets every write, queued ones included, complete. */
  release(): void {
    for (let done = this.held.shift(); done !== undefined; done = this.held.shift()) done();
  }
  get bytes(): Buffer {
    return Buffer.concat(this.chunks);
  }
}

/**
 * Plays dcmjs-dimse's part as far as StoreBypass relies on it (Network._processPDataTf in 0.3.3): parses
 * delivered PDUs synchronously, collects command fragments, and on the first data PDV after a C-STORE-RQ
 * opens the store stream through the SCP, i.e. asks the bypass to adopt the sink's file.
 */
class LibraryStandIn {
  readonly control: number[] = [];
  /** PDUs delivered, of any type. */
  deliveries = 0;
  readonly commands: Array<{ commandField: number | undefined; hasDataset: boolean }> = [];
  /** Every data PDV delivered to the library, value length only. */
  readonly dataPdvs: Array<{ contextId: number; isLast: boolean; valueLength: number }> = [];
  /** One entry per cStoreRequest: was the file ended by then, and how much did the library write itself. */
  readonly stores: Array<{ fileEnded: boolean; libraryBytes: number }> = [];
  /** Set to make the library open a store for a command the bypass does not recognise (or not open one). */
  treatAsStore: (summary: { commandField: number | undefined; hasDataset: boolean }) => boolean = (s) =>
    s.commandField === CommandField.CStoreRq && s.hasDataset;
  files: FileStandIn[] = [];
  newFile: () => FileStandIn = () => new FileStandIn();
  private command: Buffer[] = [];
  private dimse: 'store' | 'other' | undefined;
  private stream: Writable | undefined;
  private file: FileStandIn | undefined;
  private libraryBytes = 0;

  constructor(private readonly bypass: () => StoreBypass) {}

  deliver(pdu: Buffer): void {
    this.deliveries += 1;
    const type = pdu.readUInt8(0);
    if (type !== PduType.PDataTf) {
      this.control.push(type);
      return;
    }
    for (const pdv of decodePDataTf(pdu.subarray(6))) this.pdv(pdv);
  }

  private pdv(pdv: Pdv): void {
    if (pdv.isCommand) {
      this.command.push(pdv.data);
      if (!pdv.isLast) return;
      const summary = summariseCommand(Buffer.concat(this.command)) ?? { commandField: undefined, hasDataset: false };
      this.command = [];
      this.commands.push(summary);
      this.dimse = this.treatAsStore(summary) ? 'store' : summary.hasDataset ? 'other' : undefined;
      return;
    }
    this.dataPdvs.push({ contextId: pdv.contextId, isLast: pdv.isLast, valueLength: pdv.data.length });
    if (this.dimse === 'store') {
      if (this.stream === undefined) {
        const file = this.newFile();
        this.files.push(file);
        this.file = file;
        this.stream = this.bypass().adoptStoreStream(file);
        this.libraryBytes = 0;
      }
      this.stream.write(pdv.data);
      this.libraryBytes += pdv.data.length;
      if (pdv.isLast) {
        this.stream.end();
        this.stores.push({ fileEnded: this.file?.writableEnded ?? false, libraryBytes: this.libraryBytes });
        this.stream = undefined;
        this.dimse = undefined;
      }
    } else if (pdv.isLast) {
      this.dimse = undefined;
    }
  }
}

interface Rig {
  bypass: StoreBypass;
  library: LibraryStandIn;
  link: { pauses: number; resumes: number; touches: number; failures: string[]; closed: boolean };
  /** Feeds bytes in chunks of `chunk`; returns the parser's problem, if any. */
  feed(stream: Buffer, chunk?: number): string | undefined;
}

function rig(): Rig {
  const state = { pauses: 0, resumes: 0, touches: 0, failures: [] as string[], closed: false };
  let bypass: StoreBypass | undefined;
  const library = new LibraryStandIn(() => {
    if (bypass === undefined) throw new Error('no bypass yet');
    return bypass;
  });
  const link: BypassLink = {
    deliver: (pdu) => library.deliver(pdu),
    pause: () => (state.pauses += 1),
    resume: () => (state.resumes += 1),
    touch: () => (state.touches += 1),
    isClosed: () => state.closed,
    fail: (reason) => {
      state.failures.push(reason);
      state.closed = true;
      parser.stop();
    },
  };
  bypass = new StoreBypass(link);
  const guard = new PduGuard(1 << 20);
  const parser = new PduStreamParser(bypass, (type, length) => guard.checkHeader(type, length));
  parser.push(encodePdu(PduType.AssociateRq, Buffer.alloc(68)));
  return {
    bypass,
    library,
    link: state,
    feed(stream, chunk = stream.length) {
      for (let i = 0; i < stream.length; i += chunk) {
        const problem = parser.push(stream.subarray(i, i + chunk));
        if (problem !== undefined) return problem;
      }
      return undefined;
    },
  };
}

function dataset(n: number, seed = 7): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i += 1) b[i] = (i * 131 + seed) & 0xff;
  return b;
}

const storeCommand = (messageId = 1) => encodeCStoreRq({ sopClassUid: '1.2.840.10008.5.1.4.1.1.1.1', sopInstanceUid: `1.2.3.${messageId}`, messageId });

/** A C-STORE as most senders send it: the command in one PDU, the data set in PDUs of `fragment` bytes. */
function cStore(data: Buffer, fragment: number, messageId = 1, contextId = 1): Buffer {
  return Buffer.concat([...fragmentMessage(contextId, true, storeCommand(messageId), 1 << 16), ...fragmentMessage(contextId, false, data, fragment)]);
}

test('a C-STORE data set goes to the file, and the library sees only its command and two empty data PDVs', (t) => {
  const r = rig();
  const data = dataset(100_000);
  t.is(r.feed(cStore(data, 16_000), 4096), undefined);
  t.is(r.library.files.length, 1);
  t.true(r.library.files[0]?.bytes.equals(data));
  t.deepEqual(r.library.commands, [{ commandField: CommandField.CStoreRq, hasDataset: true }]);
  t.deepEqual(r.library.dataPdvs, [
    { contextId: 1, isLast: false, valueLength: 0 },
    { contextId: 1, isLast: true, valueLength: 0 },
  ]);
  // The file was ended before the library went on to cStoreRequest, and the library wrote nothing to it.
  t.deepEqual(r.library.stores, [{ fileEnded: true, libraryBytes: 0 }]);
  t.deepEqual(r.link.failures, []);
  // Every PDU counts as activity for the library's PDU timer: the command and 7 data PDUs.
  t.is(r.link.touches, 1 + 8);
  // Two deliveries for the C-STORE (after the A-ASSOCIATE-RQ): the command with the first empty data PDV,
  // then the last one.
  t.is(r.library.deliveries, 1 + 2);
});

test('the same bytes reach the file whatever the chunking, with command and data PDVs sharing PDUs', (t) => {
  const data = dataset(30_001);
  const command = storeCommand(5);
  // The command in two fragments; its last fragment shares a PDU with the first data fragment, and the
  // data set ends in a PDU that holds three PDVs, one of them empty; then a C-ECHO and a second C-STORE.
  const stream = Buffer.concat([
    encodePDataTf([{ contextId: 3, isCommand: true, isLast: false, data: command.subarray(0, 20) }]),
    encodePDataTf([
      { contextId: 3, isCommand: true, isLast: false, data: command.subarray(20, 21) },
      { contextId: 3, isCommand: true, isLast: true, data: command.subarray(21) },
      { contextId: 3, isCommand: false, isLast: false, data: data.subarray(0, 1000) },
    ]),
    encodePDataTf([{ contextId: 3, isCommand: false, isLast: false, data: data.subarray(1000, 20_000) }]),
    encodePDataTf([
      { contextId: 3, isCommand: false, isLast: false, data: data.subarray(20_000, 25_000) },
      { contextId: 3, isCommand: false, isLast: false, data: Buffer.alloc(0) },
      { contextId: 3, isCommand: false, isLast: true, data: data.subarray(25_000) },
    ]),
    encodePDataTf([{ contextId: 1, isCommand: true, isLast: true, data: encodeCEchoRq(6) }]),
    cStore(data.subarray(0, 999), 100, 7, 3),
    encodeReleaseRq(),
  ]);
  for (const chunk of [1, 7, 100, 4096, stream.length]) {
    const r = rig();
    t.is(r.feed(stream, chunk), undefined);
    t.is(r.library.files.length, 2, `chunks of ${chunk}`);
    t.true(r.library.files[0]?.bytes.equals(data), `chunks of ${chunk}`);
    t.true(r.library.files[1]?.bytes.equals(data.subarray(0, 999)), `chunks of ${chunk}`);
    t.deepEqual(
      r.library.commands.map((c) => c.commandField),
      [CommandField.CStoreRq, CommandField.CEchoRq, CommandField.CStoreRq],
    );
    t.is(r.library.dataPdvs.length, 4);
    t.true(r.library.dataPdvs.every((p) => p.valueLength === 0 && p.contextId === 3));
    t.deepEqual(r.library.stores, [
      { fileEnded: true, libraryBytes: 0 },
      { fileEnded: true, libraryBytes: 0 },
    ]);
    t.deepEqual(r.library.control, [PduType.AssociateRq, PduType.ReleaseRq]);
  }
});

test('a data set in a single PDV that is both first and last', (t) => {
  const r = rig();
  const data = dataset(500);
  t.is(r.feed(cStore(data, 1000)), undefined);
  t.true(r.library.files[0]?.bytes.equals(data));
  t.deepEqual(
    r.library.dataPdvs.map((p) => p.isLast),
    [false, true],
  );
});

test('data sets of other messages, and commands without one, reach the library unchanged', (t) => {
  const r = rig();
  const findCommand = encodeCommand([
    { element: CommandTag.AffectedSopClassUid, vr: 'UI', value: '1.2.840.10008.5.1.4.1.2.2.1' },
    { element: CommandTag.CommandField, vr: 'US', value: 0x0020 },
    { element: CommandTag.MessageId, vr: 'US', value: 1 },
    { element: CommandTag.CommandDataSetType, vr: 'US', value: 0 },
  ]);
  const identifier = dataset(3000);
  const stream = Buffer.concat([
    ...fragmentMessage(1, true, encodeCEchoRq(1), 1000),
    ...fragmentMessage(1, true, findCommand, 1000),
    ...fragmentMessage(1, false, identifier, 1000),
  ]);
  t.is(r.feed(stream, 333), undefined);
  t.deepEqual(r.library.files, []);
  t.deepEqual(
    r.library.dataPdvs.map((p) => p.valueLength),
    [1000, 1000, 1000],
  );
});

test('a C-STORE-RQ that announces no data set is not bypassed', (t) => {
  const r = rig();
  const command = encodeCommand([
    { element: CommandTag.CommandField, vr: 'US', value: CommandField.CStoreRq },
    { element: CommandTag.CommandDataSetType, vr: 'US', value: NO_DATA_SET },
  ]);
  r.library.treatAsStore = () => false;
  t.is(r.feed(Buffer.concat([encodePDataTf([{ contextId: 1, isCommand: true, isLast: true, data: command }])])), undefined);
  t.is(r.library.commands.length, 1);
  t.deepEqual(r.link.failures, []);
});

test('a command we cannot read is left to the library, which then writes any data set itself', (t) => {
  const r = rig();
  // Truncated element: not a well-formed command set, so the bypass does not claim what follows.
  const garbled = Buffer.concat([storeCommand(), Buffer.from([0x00, 0x00, 0x00, 0x09, 0xff])]);
  r.library.treatAsStore = () => true;
  const data = dataset(2000);
  t.is(r.feed(Buffer.concat([encodePDataTf([{ contextId: 1, isCommand: true, isLast: true, data: garbled }]), ...fragmentMessage(1, false, data, 700)])), undefined);
  t.true(r.library.files[0]?.bytes.equals(data));
  t.deepEqual(r.library.stores, [{ fileEnded: true, libraryBytes: 2000 }]);
  t.deepEqual(r.link.failures, []);
});

test('a command fragment inside a C-STORE data set drops the connection', (t) => {
  const r = rig();
  const data = dataset(5000);
  const stream = Buffer.concat([
    ...fragmentMessage(1, true, storeCommand(), 1000),
    ...fragmentMessage(1, false, data.subarray(0, 2000), 1000, false),
    encodePDataTf([{ contextId: 1, isCommand: true, isLast: true, data: encodeCEchoRq(2) }]),
    ...fragmentMessage(1, false, data.subarray(2000), 1000),
  ]);
  t.is(r.feed(stream, 512), undefined);
  t.is(r.link.failures.length, 1);
  t.regex(r.link.failures[0] ?? '', /command fragment arrived before the data set/);
  t.deepEqual(r.library.stores, []);
  t.is(r.library.commands.length, 1);
});

test('a command in place of the announced data set drops the connection', (t) => {
  const r = rig();
  const stream = Buffer.concat([...fragmentMessage(1, true, storeCommand(), 1000), ...fragmentMessage(1, true, encodeCEchoRq(2), 1000)]);
  t.is(r.feed(stream), undefined);
  t.is(r.link.failures.length, 1);
});

test('if the library does not open a store, the connection is dropped rather than the data lost', (t) => {
  const r = rig();
  r.library.treatAsStore = () => false;
  t.is(r.feed(cStore(dataset(3000), 1000)), undefined);
  t.regex(r.link.failures[0] ?? '', /did not open a store/);
  t.deepEqual(r.library.files, []);
});

test('the socket is paused while the file is behind, and resumed when it drains or the data set ends', (t) => {
  const r = rig();
  const files: FileStandIn[] = [];
  r.library.newFile = () => {
    const f = new FileStandIn(true);
    files.push(f);
    return f;
  };
  const data = dataset(40_000);
  const stream = cStore(data, 8000);
  // Up to the last data PDU: the file holds everything and acknowledges nothing.
  const lastPdu = fragmentMessage(1, false, data, 8000).at(-1)?.length ?? 0;
  t.is(r.feed(stream.subarray(0, stream.length - lastPdu), 1024), undefined);
  t.is(r.link.pauses, 1);
  t.is(r.link.resumes, 0);
  files[0]?.release();
  t.is(r.link.resumes, 1);
  // The rest: the file falls behind again, but the data set ends, so reading resumes at once.
  t.is(r.feed(stream.subarray(stream.length - lastPdu)), undefined);
  t.is(r.link.pauses, 2);
  t.is(r.link.resumes, 2);
  files[0]?.release();
  t.true(files[0]?.bytes.equals(data));
});

test('a file that failed is read to the end into nothing; the connection stays up for complete() to answer', (t) => {
  const r = rig();
  let file: FileStandIn | undefined;
  r.library.newFile = () => {
    file = new FileStandIn();
    file.on('error', () => undefined);
    return file;
  };
  const data = dataset(20_000);
  const stream = cStore(data, 4000);
  t.is(r.feed(stream.subarray(0, 9000)), undefined);
  file?.destroy(new Error('disk full'));
  t.is(r.feed(stream.subarray(9000)), undefined);
  t.deepEqual(r.link.failures, []);
  t.is(r.library.stores.length, 1);
});

test('summariseCommand reads CommandField and CommandDataSetType, and nothing malformed', (t) => {
  t.deepEqual(summariseCommand(storeCommand()), { commandField: CommandField.CStoreRq, hasDataset: true });
  t.deepEqual(summariseCommand(encodeCEchoRq(1)), { commandField: CommandField.CEchoRq, hasDataset: false });
  t.deepEqual(summariseCommand(Buffer.alloc(0)), { commandField: undefined, hasDataset: true });
  t.is(summariseCommand(storeCommand().subarray(0, 30)), undefined);
  const wrongGroup = Buffer.from(storeCommand());
  wrongGroup.writeUInt16LE(0x0008, 0);
  t.is(summariseCommand(wrongGroup), undefined);
});
