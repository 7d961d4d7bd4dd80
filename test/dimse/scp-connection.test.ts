import test from 'ava';
import { PassThrough, Writable } from 'node:stream';
import { dicomSchema } from '../../src/config/schema.js';
import type { InstanceSink } from '../../src/store/instance-sink.js';
import { StorageScp } from '../../src/dimse/storage-scp.js';
import { createLogger } from '../../src/logging/logger.js';
import { SOP_CLASS_UID, makeImageFile } from '../helpers/dicom-factory.js';
import {
  EXPLICIT_VR_LITTLE_ENDIAN,
  VERIFICATION_SOP_CLASS_UID,
  datasetBytesOfPart10,
  openAssociation,
  type RawAssociation,
} from '../helpers/raw-scu.js';

const DX = SOP_CLASS_UID['dx-presentation'];

/** An SCP in this process, on a free port, with the given sink (by default one that throws: a bug in our own code). */
async function inProcessScp(custom?: InstanceSink) {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new PassThrough();
  stream.on('data', (chunk: Buffer) => {
    for (const line of chunk.toString('utf8').split('\n'))
      if (line.trim() !== '') lines.push(JSON.parse(line) as Record<string, unknown>);
  });
  const logger = createLogger({ level: 'debug', format: 'json', stream });
  const sink: InstanceSink = custom ?? {
    begin: () => {
      throw new TypeError('a bug in the sink');
    },
  };
  // Port 0 (any free port) is below what the schema allows a site, so it is set after parsing.
  const scp = new StorageScp({ config: { ...dicomSchema.parse({ host: '127.0.0.1' }), port: 0 }, sink, logger });
  const { port } = await scp.start();
  return { scp, port, lines };
}

test('an error thrown while handling one connection closes that connection, never the process; others are served', async (t) => {
  const { scp, port, lines } = await inProcessScp();
  t.teardown(() => scp.stop(0));
  const open = async (callingAe: string) =>
    (await openAssociation({
      host: '127.0.0.1',
      port,
      callingAe,
      calledAe: 'CXR_GATEWAY',
      contexts: [
        { abstractSyntax: DX, transferSyntaxes: [EXPLICIT_VR_LITTLE_ENDIAN] },
        { abstractSyntax: VERIFICATION_SOP_CLASS_UID, transferSyntaxes: [EXPLICIT_VR_LITTLE_ENDIAN] },
      ],
    })) as RawAssociation;
  const bystander = await open('BYSTANDER');
  const victim = await open('VICTIM');
  const image = makeImageFile({});
  await t.throwsAsync(
    victim.store({
      sopClassUid: DX,
      sopInstanceUid: image.sopInstanceUid,
      dataset: datasetBytesOfPart10(image.bytes).dataset,
    }),
  );
  await victim.closed;
  t.true(victim.closedByPeer());
  const failure = lines.find((l) => l.event === 'DIMSE-1010');
  t.like(failure, { callingAe: 'VICTIM', error: 'a bug in the sink' });
  // The association opened before, and a new one, still work.
  t.is(await bystander.echo(), 0);
  await bystander.release();
  const after = await open('AFTER');
  t.is(await after.echo(), 0);
  await after.release();
});

test('a sink slower than the network: reading pauses and resumes, and every byte arrives in order', async (t) => {
  const received: Buffer[] = [];
  let pauses = 0;
  const sink: InstanceSink = {
    begin: () => {
      // A tiny buffer and a write that takes a moment: the SCP has to stop reading from the socket.
      const writable = new Writable({
        highWaterMark: 1024,
        write(chunk: Buffer, _encoding, callback) {
          received.push(Buffer.from(chunk));
          setTimeout(callback, 1);
        },
      });
      const write = writable.write.bind(writable);
      writable.write = ((chunk: Buffer) => {
        const ok = write(chunk);
        if (!ok) pauses += 1;
        return ok;
      }) as typeof writable.write;
      const finished = new Promise<void>((resolve) => writable.once('finish', () => resolve()));
      return {
        kind: 'transfer',
        transfer: {
          writable,
          complete: async () => {
            await finished;
            return { kind: 'stored', studyInstanceUid: '1.2.3', path: '/nowhere' };
          },
          abandon: async () => undefined,
        },
      };
    },
  };
  const { scp, port } = await inProcessScp(sink);
  t.teardown(() => scp.stop(0));
  const association = (await openAssociation({
    host: '127.0.0.1',
    port,
    callingAe: 'FAST',
    calledAe: 'CXR_GATEWAY',
    maxPduLength: 65536,
    contexts: [{ abstractSyntax: DX, transferSyntaxes: [EXPLICIT_VR_LITTLE_ENDIAN] }],
  })) as RawAssociation;
  const dataset = Buffer.alloc(600_000);
  for (let i = 0; i < dataset.length; i += 1) dataset[i] = (i * 31) % 253;
  const response = await association.store({
    sopClassUid: DX,
    sopInstanceUid: '1.2.3.4',
    dataset,
    pdvSize: 4000,
    timeoutMs: 30_000,
  });
  t.is(response.status, 0);
  t.true(Buffer.concat(received).equals(dataset));
  t.true(pauses > 0, 'the sink never pushed back');
  await association.release();
});
