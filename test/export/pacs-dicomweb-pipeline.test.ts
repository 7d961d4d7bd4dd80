import test from 'ava';
import { newUid, writeImageFile } from '../helpers/dicom-factory.js';
import { storescu } from '../helpers/dcmtk.js';
import { startGateway, type GatewayUnderTest } from '../helpers/gateway-process.js';
import { startHl7Listener, type Hl7Listener } from '../helpers/hl7-listener.js';
import { startOrthanc, type OrthancUnderTest } from '../helpers/orthanc.js';
import {
  PACS_NAME,
  SECONDARY_CAPTURE,
  inputDir,
  isLog,
  orthancStudyInstances,
  peerConfig,
} from '../helpers/pipeline-peers.js';

// The daemon (a child process) with its PACS destination of type dicomweb: a routed chest study's heatmap SC
// reaches Orthanc by STOW-RS through its DICOMweb plugin, and the RIS still gets its ORU.

const PLUGINS = ['/usr/share/orthanc/plugins/libOrthancGdcm.so', '/usr/share/orthanc/plugins/libOrthancDicomWeb.so'];

let orthanc: OrthancUnderTest;
let listener: Hl7Listener;
let gateway: GatewayUnderTest;

test.before(async () => {
  [orthanc, listener] = await Promise.all([
    startOrthanc({ extraConfig: { Plugins: PLUGINS } }),
    startHl7Listener({ responses: ['aa'] }),
  ]);
  const config = peerConfig({ pacsPort: orthanc.dicomPort, risPort: listener.port });
  const destinations = config['destinations'] as { pacs: unknown[]; ris: unknown[] };
  config['destinations'] = {
    ...destinations,
    pacs: [
      {
        type: 'dicomweb',
        name: PACS_NAME,
        baseUrl: `http://127.0.0.1:${orthanc.httpPort}/dicom-web`,
        timeoutSeconds: 10,
      },
    ],
  };
  gateway = await startGateway(config);
});

test.after.always(async () => {
  await gateway?.stop();
  await Promise.all([orthanc?.dispose(), listener?.stop()]);
});

test('a routed chest study: its heatmap SC is stored in Orthanc by STOW-RS, in the source study', async (t) => {
  const image = await writeImageFile(inputDir(), {
    studyInstanceUid: newUid(),
    viewPosition: 'PA',
    accessionNumber: 'ACC-STOW-1',
    seed: 21,
  });
  const sent = await storescu(gateway.port, [image.path], { callingAe: 'DX_ROOM1' });
  t.is(sent.code, 0, sent.stderr);
  await gateway.waitForLog(
    isLog('EXPORT-6001', { studyInstanceUid: image.studyInstanceUid }),
    'the SC stored in the PACS destination',
    60_000,
  );
  const stored = await orthancStudyInstances(orthanc, image.studyInstanceUid);
  const scs = stored.filter((i) => i.sopClassUid === SECONDARY_CAPTURE);
  t.is(scs.length, 1);
  t.is(scs[0]?.studyInstanceUid, image.studyInstanceUid);
  await gateway.waitForLog(
    isLog('EXPORT-6002', { studyInstanceUid: image.studyInstanceUid }),
    'the ORU reported to the RIS',
    60_000,
  );
});
