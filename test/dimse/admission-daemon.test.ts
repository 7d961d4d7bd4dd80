import test from 'ava';
import { mkdtempSync } from 'node:fs';
import type net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { SOP_CLASS_UID, makeImageFile, writeImageFile } from '../helpers/dicom-factory.js';
import { storescu } from '../helpers/dcmtk.js';
import { startGateway } from '../helpers/gateway-process.js';
import {
  EXPLICIT_VR_LITTLE_ENDIAN,
  connectIdle,
  datasetBytesOfPart10,
  encodeAssociateRq,
  openAssociation,
} from '../helpers/raw-scu.js';

const DX = SOP_CLASS_UID['dx-presentation'];
const FLOODER = '127.0.0.2';

/** Opens a socket from the flooding address that sends an association request we reject, and then holds it. */
async function rejectedButHeld(port: number): Promise<net.Socket> {
  const socket = await connectIdle('127.0.0.1', port, { localAddress: FLOODER });
  socket.on('data', () => undefined);
  socket.write(
    encodeAssociateRq({
      callingAe: 'NOBODY',
      calledAe: 'NOT_OURS',
      contexts: [{ abstractSyntax: DX, transferSyntaxes: [EXPLICIT_VR_LITTLE_ENDIAN] }],
    }),
  );
  return socket;
}

test('300 idle sockets and 20 rejected ones from one address lock no one out: storescu and a sender from that address get in', async (t) => {
  // ARTIM is long here, so that it is admission, not the timer, that makes room.
  const gateway = await startGateway({
    dicom: { associationRequestTimeoutSeconds: 600, maxAssociations: 4, maxConnectionsPerSource: 16 },
  });
  const sockets: net.Socket[] = [];
  t.teardown(async () => {
    for (const s of sockets) s.destroy();
    await gateway.stop();
  });
  let closedByGateway = 0;
  const track = (socket: net.Socket): void => {
    sockets.push(socket);
    socket.on('error', () => undefined);
    socket.once('close', () => {
      closedByGateway += 1;
    });
  };
  for (let i = 0; i < 300; i += 1) track(await connectIdle('127.0.0.1', gateway.port, { localAddress: FLOODER }));
  for (let i = 0; i < 20; i += 1) track(await rejectedButHeld(gateway.port));

  // A modality on another address, while the flood holds its sockets.
  const file = await writeImageFile(mkdtempSync(path.join(os.tmpdir(), 'flood-')), {});
  const started = Date.now();
  const result = await storescu(gateway.port, [file.path], { callingAe: 'REAL_MODALITY' });
  const elapsed = Date.now() - started;
  t.is(result.code, 0, result.stderr);
  t.true(elapsed < 5000, `storescu took ${elapsed} ms`);

  // A real sender from the flooding address itself still gets in: it displaces that address's idle sockets.
  const image = makeImageFile({});
  const association = await openAssociation({
    host: '127.0.0.1',
    port: gateway.port,
    localAddress: FLOODER,
    callingAe: 'SAME_HOST',
    calledAe: 'CXR_GATEWAY',
    contexts: [{ abstractSyntax: DX, transferSyntaxes: [EXPLICIT_VR_LITTLE_ENDIAN] }],
  });
  if (association.rejected) return t.fail('rejected');
  const response = await association.store({
    sopClassUid: DX,
    sopInstanceUid: image.sopInstanceUid,
    dataset: datasetBytesOfPart10(image.bytes).dataset,
  });
  t.is(response.status, 0);
  await association.release();

  // The flood was held to the per-source limit: all but (at most) 16 of its 320 sockets were closed by us.
  const deadline = Date.now() + 5000;
  while (closedByGateway < 320 - 16 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
  t.true(closedByGateway >= 320 - 16, `${closedByGateway} of 320 flood sockets closed`);
});
