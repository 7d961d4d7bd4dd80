import test from 'ava';
import { PassThrough, Writable } from 'node:stream';
import { dicomSchema } from '../../src/config/schema.js';
import { StorageScp } from '../../src/dimse/storage-scp.js';
import { createLogger } from '../../src/logging/logger.js';
import type { IngestOutcome, InstanceSink } from '../../src/store/instance-sink.js';
import { SOP_CLASS_UID, makeImageFile } from '../helpers/dicom-factory.js';
import {
  EXPLICIT_VR_LITTLE_ENDIAN,
  datasetBytesOfPart10,
  openAssociation,
  type RawAssociation,
} from '../helpers/raw-scu.js';
import { waitUntil } from '../helpers/wait-until.js';

// StorageScp.stop(deadline), with an injected clock for the deadline: a C-STORE in progress at stop() is answered
// when it completes before the deadline; one still arriving at the deadline is cut off (A-ABORT, closed) and
// never acknowledged. Each step waits for a positive event.

const DX = SOP_CLASS_UID['dx-presentation'];
const T0 = Date.parse('2026-01-05T08:00:00Z');

/** A sink that takes the bytes and holds `complete` until the test opens the gate. */
function gatedSink() {
  let open!: () => void;
  const gate = new Promise<void>((resolve) => (open = resolve));
  const calls = { begin: 0, complete: 0, abandon: 0 };
  const sink: InstanceSink = {
    begin: () => {
      calls.begin += 1;
      return {
        kind: 'transfer',
        transfer: {
          writable: new Writable({ write: (_chunk, _encoding, callback) => callback() }),
          complete: async (): Promise<IngestOutcome> => {
            calls.complete += 1;
            await gate;
            return { kind: 'stored', studyInstanceUid: '1.2.3', path: '/dev/null' };
          },
          abandon: async () => {
            calls.abandon += 1;
          },
        },
      };
    },
  };
  return { sink, calls, open: () => open() };
}

async function scpWith(sink: InstanceSink, now: () => number) {
  const logger = createLogger({ level: 'error', format: 'json', stream: new PassThrough() });
  const scp = new StorageScp({ config: { ...dicomSchema.parse({ host: '127.0.0.1' }), port: 0 }, sink, logger, now });
  const { port } = await scp.start();
  const association = (await openAssociation({
    host: '127.0.0.1',
    port,
    callingAe: 'MODALITY',
    calledAe: 'CXR_GATEWAY',
    contexts: [{ abstractSyntax: DX, transferSyntaxes: [EXPLICIT_VR_LITTLE_ENDIAN] }],
  })) as RawAssociation;
  return { scp, association };
}

test('stop(deadline): a C-STORE being made durable when stop() is called is answered Success before the deadline', async (t) => {
  const gated = gatedSink();
  const { scp, association } = await scpWith(gated.sink, () => T0);
  t.teardown(() => scp.stop(0));
  const image = makeImageFile({});
  const storing = association.store({
    sopClassUid: DX,
    sopInstanceUid: image.sopInstanceUid,
    dataset: datasetBytesOfPart10(image.bytes).dataset,
  });
  await waitUntil(() => gated.calls.complete === 1, 'the sink asked to complete the instance');
  const stopping = scp.stop(T0 + 60_000);
  t.is(scp.status().state, 'stopping');
  gated.open();
  t.is((await storing).status, 0);
  await stopping;
  t.is(scp.status().state, 'stopped');
});

test('stop(deadline): a C-STORE still arriving at the deadline is cut off with an A-ABORT, never acknowledged, its bytes abandoned', async (t) => {
  const gated = gatedSink();
  let clock = T0;
  const { scp, association } = await scpWith(gated.sink, () => clock);
  t.teardown(() => scp.stop(0));
  const image = makeImageFile({});
  const { dataset } = datasetBytesOfPart10(image.bytes);
  await association.sendCommandAndPartialDataset({
    sopClassUid: DX,
    sopInstanceUid: image.sopInstanceUid,
    dataset,
    bytesToSend: 1000,
  });
  await waitUntil(() => gated.calls.begin === 1, 'the transfer to begin');
  let stopped = false;
  const stopping = scp.stop(T0 + 5_000).then(() => (stopped = true));
  t.is(scp.status().state, 'stopping');
  t.false(stopped);
  // The deadline comes (by the injected clock): the SCP aborts the association and closes the connection.
  clock = T0 + 5_000;
  await association.closed;
  t.truthy(association.abortReceived);
  await stopping;
  t.is(gated.calls.complete, 0);
  await waitUntil(() => gated.calls.abandon === 1, 'the partial transfer to be abandoned');
  t.is(scp.status().state, 'stopped');
});
