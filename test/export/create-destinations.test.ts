import test from 'ava';
import { mkdtempSync, readdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { pacsDestinationSchema, risDestinationSchema } from '../../src/config/schema.js';
import { createDestinations } from '../../src/export/create-destinations.js';
import { PacsDicomDestination } from '../../src/export/pacs-dicom-destination.js';
import { PacsFolderDestination } from '../../src/export/pacs-folder-destination.js';
import { RisFolderDestination } from '../../src/export/ris-folder-destination.js';
import { RisMllpDestination } from '../../src/export/ris-mllp-destination.js';
import { createLogger } from '../../src/logging/logger.js';
import { makeImageFile } from '../helpers/dicom-factory.js';
import { freePort } from '../helpers/ports.js';

const logger = createLogger({
  level: 'error',
  format: 'json',
  stream: new Writable({ write: (_chunk, _encoding, callback) => callback() }),
});

function message(controlId: string): string {
  return `MSH|^~\\&|CXR_GATEWAY||RIS||20240102101500||ORU^R01^ORU_R01|${controlId}|P|2.5.1\rPID|1||X`;
}

test('builds one destination per configured entry, by name and type', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'destinations-'));
  const pacsPort = await freePort();
  const risPort = await freePort();
  const { pacs, ris } = createDestinations(
    {
      pacs: [
        pacsDestinationSchema.parse({
          type: 'dicom',
          name: 'main-pacs',
          host: '127.0.0.1',
          port: pacsPort,
          aeTitle: 'PACS',
          connectTimeoutSeconds: 1,
        }),
        pacsDestinationSchema.parse({ type: 'folder', name: 'pacs-folder', path: path.join(dir, 'dicom') }),
      ],
      ris: [
        risDestinationSchema.parse({
          type: 'mllp',
          name: 'main-ris',
          host: '127.0.0.1',
          port: risPort,
          connectTimeoutSeconds: 1,
        }),
        risDestinationSchema.parse({ type: 'folder', name: 'ris-folder', path: path.join(dir, 'hl7') }),
      ],
    },
    'OUR_AE',
    logger,
  );
  t.deepEqual([...pacs.keys()], ['main-pacs', 'pacs-folder']);
  t.deepEqual([...ris.keys()], ['main-ris', 'ris-folder']);
  t.true(pacs.get('main-pacs') instanceof PacsDicomDestination);
  t.true(pacs.get('pacs-folder') instanceof PacsFolderDestination);
  t.true(ris.get('main-ris') instanceof RisMllpDestination);
  t.true(ris.get('ris-folder') instanceof RisFolderDestination);
  for (const d of [...pacs.values(), ...ris.values()]) await d.start();
  t.teardown(async () => {
    for (const d of [...pacs.values(), ...ris.values()]) await d.stop();
  });

  // Wired to what the config says: the DICOM one reaches for its port (nothing listens there)...
  const dicom = await pacs.get('main-pacs')?.deliver([{ bytes: makeImageFile().bytes }]);
  t.like(dicom, { kind: 'retry', cause: 'connection-refused' });
  t.regex(dicom?.kind === 'retry' ? dicom.reason : '', new RegExp(`127\\.0\\.0\\.1:${pacsPort}`));
  // ...the MLLP one too, with the MLLP sender's own outcome passed through...
  t.like(await ris.get('main-ris')?.deliver([{ controlId: 'C1', message: message('C1') }]), {
    kind: 'retry',
    cause: 'connection-refused',
  });
  // ...and refuses a message whose MSH-10 is not its control ID before sending it.
  t.like(await ris.get('main-ris')?.deliver([{ controlId: 'C1', message: message('C2') }]), {
    kind: 'parked',
    cause: 'invalid-message',
  });
  // The folders write where they were told.
  t.deepEqual(await ris.get('ris-folder')?.deliver([{ controlId: 'C1', message: message('C1') }]), {
    kind: 'delivered',
  });
  t.deepEqual(readdirSync(path.join(dir, 'hl7')), ['C1.hl7']);
});
