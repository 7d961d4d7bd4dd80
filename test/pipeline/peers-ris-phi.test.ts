import test from 'ava';
import { newUid, writeImageFile } from '../helpers/dicom-factory.js';
import { storescu } from '../helpers/dcmtk.js';
import { listJobs, runCli, startGateway } from '../helpers/gateway-process.js';
import { startHl7Listener } from '../helpers/hl7-listener.js';
import { startOrthanc } from '../helpers/orthanc.js';
import { RIS_NAME, deliveriesOfJob, inputDir, isLog, jobsOfStudy, peerConfig } from '../helpers/pipeline-peers.js';

// A real RIS (python3-hl7) that answers AE, AE, then AR with texts naming the patient (MSA-3 "... DOE JANE MRN
// 4711-0815", ERR-8 "patient DOE^JANE unknown"): the daemon at info level logs codes and lengths, never that
// text; the store and `jobs` (table and --json) keep the cause and the sentence without it.

// The MRN as a whole: its halves alone occur inside random UIDs (a study UID held "...3247110018...").
const PATIENT = /DOE|JANE|4711-0815/;

test('RIS ACK text naming a patient is absent from the daemon log at info, from the store and from jobs', async (t) => {
  const orthanc = await startOrthanc();
  t.teardown(() => orthanc.dispose());
  const listener = await startHl7Listener({ responses: ['ae-phi', 'ae-phi', 'ar-phi'] });
  t.teardown(() => listener.stop());
  const gateway = await startGateway({
    ...peerConfig({ pacsPort: orthanc.dicomPort, risPort: listener.port }),
    logging: { level: 'info', format: 'json' },
  });
  t.teardown(() => gateway.stop());
  const image = await writeImageFile(inputDir(), { studyInstanceUid: newUid(), accessionNumber: 'ACC-PHI', seed: 81 });
  const { studyInstanceUid } = image;
  t.is((await storescu(gateway.port, [image.path])).code, 0);
  const parked = await gateway.waitForLog(
    isLog('EXPORT-6004', { studyInstanceUid, destination: RIS_NAME }),
    'the RIS delivery parked after AE, AE, AR',
    60_000,
  );

  // The RIS did send the patient's name, three times, and the daemon heard every answer.
  await listener.waitForMessages(3);
  t.like(parked, { level: 'error', cause: 'application-reject', failure: 'permanent' });
  t.regex(String(parked.why), /AR \(application reject\) \(\d+ characters of text, logged at debug level only\)/);
  const notAccepted = gateway.logs.filter((l) => l.event === 'EXPORT-6012');
  t.deepEqual(
    notAccepted.map((l) => l.cause),
    ['application-error', 'application-error', 'application-reject'],
  );
  t.regex(String(notAccepted[0]?.why), /error code 207/);

  // Nothing the daemon printed (JSON lines and any raw line) carries the text.
  const printed = JSON.stringify(gateway.logs);
  t.notRegex(printed, PATIENT);
  t.false(gateway.logs.some((l) => l.level === 'debug'));

  const [job] = jobsOfStudy(gateway.workDir, studyInstanceUid);
  const ris = deliveriesOfJob(gateway.workDir, job?.id ?? -1).find((d) => d.kind === 'ris');
  t.like(ris, { state: 'parked', attempts: 3 });
  t.regex(ris?.last_error ?? '', /^application-reject: the RIS answered AR/);
  t.notRegex(ris?.last_error ?? '', PATIENT);
  const table = await runCli(['jobs', '--config', gateway.configPath]);
  t.is(table.code, 0, table.stderr);
  t.regex(table.stdout, /ris ris: parked .*application-reject/);
  t.notRegex(table.stdout, PATIENT);
  t.notRegex(JSON.stringify(await listJobs(gateway.configPath)), PATIENT);
});
