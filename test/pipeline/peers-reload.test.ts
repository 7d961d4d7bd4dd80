import test from 'ava';
import { readFileSync, writeFileSync } from 'node:fs';
import { parse, stringify } from 'yaml';
import { resultControlId } from '../../src/reporting/hl7-control-id.js';
import { newUid, writeImageFile } from '../helpers/dicom-factory.js';
import { storescu } from '../helpers/dcmtk.js';
import { startGateway, type GatewayUnderTest } from '../helpers/gateway-process.js';
import { startHl7Listener } from '../helpers/hl7-listener.js';
import { startOrthanc } from '../helpers/orthanc.js';
import { freePort } from '../helpers/ports.js';
import {
  RIS_NAME,
  deliveriesOfJob,
  inputDir,
  isLog,
  jobsOfStudy,
  peerConfig,
  processAction,
} from '../helpers/pipeline-peers.js';

// Reload never strands work: a destination added by a reload is live before the rule that names it, and a
// delivery whose destination a reload removed waits (it does not park) and goes out once the destination is
// back, after a restart too.

const cleanups: Array<() => Promise<unknown>> = [];
test.after.always(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
});

type Config = {
  destinations: { pacs: unknown[]; ris: Array<{ name: string }> };
  rules: Array<{ action: { ris: string[] } }>;
};

function editConfig(path: string, edit: (config: Config) => void): void {
  const config = parse(readFileSync(path, 'utf8')) as Config;
  edit(config);
  writeFileSync(path, stringify(config));
}

function withoutRis(overrides: ReturnType<typeof peerConfig>): ReturnType<typeof peerConfig> {
  const destinations = overrides.destinations as Config['destinations'];
  return {
    ...overrides,
    destinations: { ...destinations, ris: [] } as unknown as Record<string, unknown>,
    rules: [
      {
        name: 'chest',
        match: { attributes: { Modality: { oneOf: ['CR', 'DX'] } } },
        action: { ...processAction(), ris: [] },
      },
    ] as unknown as Record<string, unknown>,
  };
}

async function daemon(
  overrides: ReturnType<typeof peerConfig>,
  existing?: Parameters<typeof startGateway>[1],
): Promise<GatewayUnderTest> {
  const gateway = await startGateway(overrides, existing);
  cleanups.push(() => gateway.stop());
  return gateway;
}

test('a reload that adds a RIS destination and a rule naming it: the next study is reported to it, nothing parked', async (t) => {
  const orthanc = await startOrthanc();
  cleanups.push(() => orthanc.dispose());
  const listener = await startHl7Listener({ responses: ['aa'] });
  cleanups.push(() => listener.stop());
  const full = peerConfig({ pacsPort: orthanc.dicomPort, risPort: listener.port });
  const gateway = await daemon(withoutRis(full));

  const risEntry = (full.destinations as Config['destinations']).ris[0];
  editConfig(gateway.configPath, (c) => {
    c.destinations.ris = [risEntry as { name: string }];
    for (const rule of c.rules) rule.action.ris = [RIS_NAME];
  });
  process.kill(gateway.pid, 'SIGHUP');
  const reloaded = await gateway.waitForLog(
    (l) => l.event === 'CONFIG-9004' && Array.isArray(l.destinationsAdded) && l.destinationsAdded.includes(RIS_NAME),
    'the reload adding the RIS',
  );
  t.deepEqual(reloaded.restartNeededFor, []);

  const image = await writeImageFile(inputDir(), {
    studyInstanceUid: newUid(),
    accessionNumber: 'ACC-RELOAD',
    seed: 71,
  });
  t.is((await storescu(gateway.port, [image.path])).code, 0);
  await gateway.waitForLog(
    isLog('EXPORT-6002', { studyInstanceUid: image.studyInstanceUid, destination: RIS_NAME }),
    'the report to the added RIS',
    60_000,
  );
  const [job] = jobsOfStudy(gateway.workDir, image.studyInstanceUid);
  t.like(job, { state: 'done' });
  t.like(
    deliveriesOfJob(gateway.workDir, job?.id ?? -1).find((d) => d.kind === 'ris'),
    { destination: RIS_NAME, state: 'delivered', attempts: 1 },
  );
  t.is(listener.countByControlId(resultControlId(image.studyInstanceUid, 0, RIS_NAME)), 1);
  t.false(gateway.logs.some((l) => l.event === 'EXPORT-6004'));
});

test('a reload that removes a destination while a delivery to it is pending: it waits, visibly; after a restart with the destination back it goes out', async (t) => {
  const orthanc = await startOrthanc();
  cleanups.push(() => orthanc.dispose());
  // Nothing listens on the RIS port yet: the RIS delivery keeps failing until the reload removes the RIS.
  const risPort = await freePort();
  const full = peerConfig({ pacsPort: orthanc.dicomPort, risPort });
  const first = await daemon(full);
  const image = await writeImageFile(inputDir(), {
    studyInstanceUid: newUid(),
    accessionNumber: 'ACC-REMOVED',
    seed: 72,
  });
  const { studyInstanceUid } = image;
  t.is((await storescu(first.port, [image.path])).code, 0);
  await first.waitForLog(
    (l) => isLog('EXPORT-6003', { studyInstanceUid, destination: RIS_NAME })(l) && l.cause === 'connection-refused',
    'a failed RIS attempt',
    60_000,
  );

  const saved = readFileSync(first.configPath, 'utf8');
  editConfig(first.configPath, (c) => {
    c.destinations.ris = [];
    for (const rule of c.rules) rule.action.ris = [];
  });
  process.kill(first.pid, 'SIGHUP');
  await first.waitForLog(
    (l) =>
      l.event === 'CONFIG-9004' && Array.isArray(l.destinationsRemoved) && l.destinationsRemoved.includes(RIS_NAME),
    'the reload removing the RIS',
  );
  await first.waitForLog(
    (l) =>
      isLog('EXPORT-6003', { studyInstanceUid, destination: RIS_NAME })(l) && l.cause === 'destination-not-configured',
    'the RIS delivery waiting for its destination',
    30_000,
  );
  const [job] = jobsOfStudy(first.workDir, studyInstanceUid);
  if (job === undefined) return t.fail('no job');
  const waiting = deliveriesOfJob(first.workDir, job.id).find((d) => d.kind === 'ris');
  t.like(waiting, { state: 'pending' });
  t.regex(
    waiting?.last_error ?? '',
    /^destination-not-configured: destination 'ris' is not configured; the delivery waits/,
  );
  t.false(first.logs.some((l) => l.event === 'EXPORT-6004'));
  t.is(await first.stop(), 0);

  // The RIS is back in the config and listening: a restart picks the waiting delivery up.
  writeFileSync(first.configPath, saved);
  const listener = await startHl7Listener({ responses: ['aa'], port: risPort });
  cleanups.push(() => listener.stop());
  const second = await daemon(full, { workDir: first.workDir, configPath: first.configPath, port: first.port });
  await second.waitForLog(
    isLog('EXPORT-6002', { studyInstanceUid, destination: RIS_NAME }),
    'the report after the restart',
    60_000,
  );
  t.like(
    deliveriesOfJob(second.workDir, job.id).find((d) => d.kind === 'ris'),
    { state: 'delivered' },
  );
  t.is(jobsOfStudy(second.workDir, studyInstanceUid)[0]?.state, 'done');
  t.is(listener.countByControlId(resultControlId(studyInstanceUid, 0, RIS_NAME)), 1);
});
