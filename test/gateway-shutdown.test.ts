import test from 'ava';
import { newUid, writeImageFile } from './helpers/dicom-factory.js';
import { storescu } from './helpers/dcmtk.js';
import { startGateway, writeGatewayConfig, type GatewayUnderTest } from './helpers/gateway-process.js';
import { startHl7Listener } from './helpers/hl7-listener.js';
import { stallingPacs } from './helpers/stalling-pacs.js';
import { freePort } from './helpers/ports.js';
import { PACS_NAME, RIS_NAME, deliveriesOfJob, inputDir, jobsOfStudy, peerConfig } from './helpers/pipeline-peers.js';

// The done-when of issue 15 item 3: a peer that accepts and never answers must not hold the shutdown for its
// response timeout (60 s here). The daemon gets SIGTERM while its send waits; it must exit 0 within
// dicom.shutdownGraceSeconds plus a few seconds, leave the delivery pending (not delivered), and send it again
// after a restart (a positive event: the stalled peer sees the second attempt).

const GRACE_SECONDS = 2;
const SLACK_MS = 5000;

const cleanups: Array<() => Promise<unknown>> = [];
test.after.always(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
});

/** SIGTERM and the time to exit, in ms. */
async function timedStop(gateway: GatewayUnderTest): Promise<{ code: number | null; ms: number }> {
  const started = Date.now();
  const code = await gateway.stop();
  return { code, ms: Date.now() - started };
}

function overrides(pacsPort: number, risPort: number, rule: { pacs: string[]; ris: string[] }) {
  const config = peerConfig({ pacsPort, risPort });
  const destinations = config.destinations as unknown as {
    pacs: Array<Record<string, unknown>>;
    ris: Array<Record<string, unknown>>;
  };
  // The longest waits a production config allows: the shutdown must not depend on them.
  for (const d of destinations.pacs) d.responseTimeoutSeconds = 60;
  for (const d of destinations.ris) d.ackTimeoutSeconds = 60;
  return {
    ...config,
    dicom: { shutdownGraceSeconds: GRACE_SECONDS },
    rules: [
      {
        name: 'chest',
        match: { attributes: { Modality: { oneOf: ['CR', 'DX'] } } },
        action: { model: 'tiny', outputs: ['sc'], ...rule, priority: 'normal' },
      },
    ] as unknown as Record<string, unknown>,
  };
}

test('shutdown with a PACS that accepts the association and never answers the C-STORE ends within shutdownGraceSeconds; the delivery stays pending and is sent again after restart', async (t) => {
  const pacs = await stallingPacs();
  cleanups.push(() => pacs.close());
  const config = overrides(pacs.port, await freePort(), {
    pacs: [PACS_NAME],
    ris: [],
  });
  const written = await writeGatewayConfig(config);
  const gateway = await startGateway(config, written);
  cleanups.push(() => gateway.stop());
  const studyInstanceUid = newUid();
  const image = await writeImageFile(inputDir(), {
    studyInstanceUid,
    accessionNumber: 'ACC-STALL-PACS',
    seed: 61,
  });
  t.is((await storescu(gateway.port, [image.path])).code, 0);
  // The C-STORE request is with the PACS, which will not answer for 60 s.
  await pacs.waitForData(1);

  const stop = await timedStop(gateway);
  t.log(`shutdown with a stalled PACS took ${stop.ms} ms (grace ${GRACE_SECONDS} s)`);
  t.is(stop.code, 0);
  t.true(stop.ms < GRACE_SECONDS * 1000 + SLACK_MS, `shutdown took ${stop.ms} ms`);
  t.truthy(gateway.logs.find((l) => l.event === 'PIPELINE-4009'));

  const [job] = jobsOfStudy(written.workDir, studyInstanceUid);
  if (job === undefined) return t.fail('no job for the study');
  const [delivery] = deliveriesOfJob(written.workDir, job.id);
  t.is(delivery?.destination, PACS_NAME);
  t.is(delivery?.state, 'pending');
  t.regex(delivery?.last_error ?? '', /^stopped: /);

  // After restart the same delivery goes out again: the stalled PACS sees a second association.
  const again = await startGateway(config, written);
  cleanups.push(() => again.stop());
  await pacs.waitForData(2);
  t.is(pacs.associations, 2);
  const second = await timedStop(again);
  t.is(second.code, 0);
  t.true(second.ms < GRACE_SECONDS * 1000 + SLACK_MS, `second shutdown took ${second.ms} ms`);
});

test('shutdown with a RIS that accepts the MLLP connection and never ACKs ends within shutdownGraceSeconds; the report stays pending and is sent again after restart', async (t) => {
  const ris = await startHl7Listener({ responses: ['silent'] });
  cleanups.push(() => ris.stop());
  const config = overrides(await freePort(), ris.port, {
    pacs: [],
    ris: [RIS_NAME],
  });
  const written = await writeGatewayConfig(config);
  const gateway = await startGateway(config, written);
  cleanups.push(() => gateway.stop());
  const studyInstanceUid = newUid();
  const image = await writeImageFile(inputDir(), {
    studyInstanceUid,
    accessionNumber: 'ACC-STALL-RIS',
    seed: 62,
  });
  t.is((await storescu(gateway.port, [image.path])).code, 0);
  const [message] = await ris.waitForMessages(1, 120_000);
  if (message === undefined) return t.fail('the RIS received nothing');

  const stop = await timedStop(gateway);
  t.log(`shutdown with a silent RIS took ${stop.ms} ms (grace ${GRACE_SECONDS} s)`);
  t.is(stop.code, 0);
  t.true(stop.ms < GRACE_SECONDS * 1000 + SLACK_MS, `shutdown took ${stop.ms} ms`);

  const [job] = jobsOfStudy(written.workDir, studyInstanceUid);
  if (job === undefined) return t.fail('no job for the study');
  const [delivery] = deliveriesOfJob(written.workDir, job.id);
  t.is(delivery?.destination, RIS_NAME);
  t.is(delivery?.state, 'pending');
  t.regex(delivery?.last_error ?? '', /^stopped: /);

  const again = await startGateway(config, written);
  cleanups.push(() => again.stop());
  await ris.waitForMessages(2, 120_000);
  t.is(ris.countByControlId(message.controlId), 2);
  const second = await timedStop(again);
  t.is(second.code, 0);
  t.true(second.ms < GRACE_SECONDS * 1000 + SLACK_MS, `second shutdown took ${second.ms} ms`);
});
