import test from 'ava';
import { PassThrough } from 'node:stream';
import { dicomSchema } from '../../src/config/schema.js';
import type { InstanceSink } from '../../src/dimse/instance-sink.js';
import { StorageScp } from '../../src/dimse/storage-scp.js';
import { createLogger } from '../../src/logging/logger.js';
import { SOP_CLASS_UID, makeImageFile } from '../helpers/dicom-factory.js';
import { EXPLICIT_VR_LITTLE_ENDIAN, VERIFICATION_SOP_CLASS_UID, datasetBytesOfPart10, openAssociation, type RawAssociation } from '../helpers/raw-scu.js';

const DX = SOP_CLASS_UID['dx-presentation'];

/** An SCP in this process, on a free port, whose sink throws: a bug in our own code, as far as the SCP knows. */
async function scpWithThrowingSink() {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new PassThrough();
  stream.on('data', (chunk: Buffer) => {
    for (const line of chunk.toString('utf8').split('\n')) if (line.trim() !== '') lines.push(JSON.parse(line) as Record<string, unknown>);
  });
  const logger = createLogger({ level: 'debug', format: 'json', stream });
  const sink: InstanceSink = {
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
  const { scp, port, lines } = await scpWithThrowingSink();
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
  await t.throwsAsync(victim.store({ sopClassUid: DX, sopInstanceUid: image.sopInstanceUid, dataset: datasetBytesOfPart10(image.bytes).dataset }));
  await victim.closed;
  t.true(victim.closedByPeer());
  const failure = lines.find((l) => l.message === 'connection handling failed; closing the connection');
  t.like(failure, { callingAe: 'VICTIM', error: 'a bug in the sink' });
  // The association opened before, and a new one, still work.
  t.is(await bystander.echo(), 0);
  await bystander.release();
  const after = await open('AFTER');
  t.is(await after.echo(), 0);
  await after.release();
});
