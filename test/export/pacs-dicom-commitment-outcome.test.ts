import test from 'ava';
import { PassThrough } from 'node:stream';
import { CommitmentRegistry } from '../../src/dimse/commitment-registry.js';
import { CommandField } from '../../src/dimse/dimse-messages.js';
import { STORAGE_COMMITMENT_INSTANCE, STORAGE_COMMITMENT_PUSH_MODEL } from '../../src/dimse/storage-commitment.js';
import { pacsDestinationSchema } from '../../src/config/schema.js';
import { createDestinations } from '../../src/export/create-destinations.js';
import { PacsDicomDestination } from '../../src/export/pacs-dicom-destination.js';
import { FAILURE_CLASSES } from '../../src/export/retry-policy.js';
import { createLogger } from '../../src/logging/logger.js';
import { commitmentPacs } from '../helpers/commitment-pacs.js';
import { makeImageFile } from '../helpers/dicom-factory.js';
import { waitUntil } from '../helpers/wait-until.js';

// The delivery's storage commitment semantics against a stand-in PACS that reports on the request's own
// association: delivered only when every object is committed; failures are a retry naming each failed instance and
// its reason. (Orthanc, which reports on a new association, is in pacs-dicom-commitment.test.ts.)

function setup() {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new PassThrough();
  stream.on('data', (chunk: Buffer) => {
    for (const line of chunk.toString().split('\n'))
      if (line.trim() !== '') lines.push(JSON.parse(line) as Record<string, unknown>);
  });
  const logger = createLogger({ level: 'info', format: 'json', stream, captureLibraryOutput: false });
  return { logger, lines, registry: new CommitmentRegistry({ logger }) };
}

function destination(port: number, registry: CommitmentRegistry, logger: ReturnType<typeof setup>['logger']) {
  return new PacsDicomDestination({
    name: 'pacs',
    peer: {
      host: '127.0.0.1',
      port,
      calledAeTitle: 'PACS',
      callingAeTitle: 'CXR_GATEWAY',
      connectTimeoutMs: 2000,
      responseTimeoutMs: 5000,
    },
    logger,
    commitment: { registry, timeoutMs: 10_000 },
  });
}

test('a report on the same association committing everything: delivered, and the report answered Success', async (t) => {
  const pacs = await commitmentPacs();
  t.teardown(() => pacs.close());
  const { logger, lines, registry } = setup();
  const images = [makeImageFile({}), makeImageFile({})];
  const outcome = await destination(pacs.port, registry, logger).deliver(
    images.map((i, n) => ({ bytes: i.bytes, label: `image ${n}` })),
  );
  t.deepEqual(outcome, { kind: 'delivered' });
  t.deepEqual(
    pacs.requests[0]?.referenced.map((r) => r.sopInstanceUid),
    images.map((i) => i.sopInstanceUid),
  );
  t.like(
    lines.find((l) => l.event === 'DIMSE-1202'),
    { via: 'same-association', instances: 2 },
  );
  await waitUntil(() => pacs.reportAnswers.length > 0, 'our N-EVENT-REPORT-RSP', 5000);
  t.like(pacs.reportAnswers[0], {
    commandField: CommandField.NEventReportRsp,
    status: 0,
    affectedSopClassUid: STORAGE_COMMITMENT_PUSH_MODEL,
    affectedSopInstanceUid: STORAGE_COMMITMENT_INSTANCE,
  });
  t.is(registry.waiting, 0);
});

test('a report listing failed instances: a transient retry that names each failed instance and its reason', async (t) => {
  const images = [makeImageFile({}), makeImageFile({}), makeImageFile({})];
  const failing = new Map([
    [images[0]?.sopInstanceUid, 0x0112],
    [images[2]?.sopInstanceUid, 0x0213],
  ]);
  const pacs = await commitmentPacs({ failures: (uid) => failing.get(uid) });
  t.teardown(() => pacs.close());
  const { logger, lines, registry } = setup();
  const outcome = await destination(pacs.port, registry, logger).deliver(
    images.map((i, n) => ({ bytes: i.bytes, label: `image ${n}` })),
  );
  t.like(outcome, { kind: 'retry', cause: 'commitment-failed' });
  if (outcome.kind !== 'retry') return;
  t.regex(outcome.reason, /did not commit 2 of 3 objects/);
  t.true(outcome.reason.includes(`${images[0]?.sopInstanceUid}: 0x0112 no such object instance`));
  t.true(outcome.reason.includes(`${images[2]?.sopInstanceUid}: 0x0213 resource limitation`));
  t.false(outcome.reason.includes(images[1]?.sopInstanceUid ?? '?'));
  t.is(FAILURE_CLASSES[outcome.cause]?.class, 'transient');
  t.like(
    lines.find((l) => l.event === 'DIMSE-1203'),
    { failed: 2, instances: 3, via: 'same-association' },
  );
  // The report itself was fine: answered Success even though it lists failures.
  await waitUntil(() => pacs.reportAnswers.length > 0, 'our N-EVENT-REPORT-RSP', 5000);
  t.is(pacs.reportAnswers[0]?.status, 0);
});

test('every storage commitment cause is classified as transient: the objects are sent and committed again', (t) => {
  for (const cause of ['commitment-request-failed', 'commitment-failed', 'commitment-timeout'])
    t.is(FAILURE_CLASSES[cause]?.class, 'transient', cause);
});

test('storageCommitment is off by default; createDestinations asks for commitment only where it is enabled', async (t) => {
  const pacs = await commitmentPacs();
  t.teardown(() => pacs.close());
  const { logger, registry } = setup();
  const entry = (name: string, storageCommitment?: unknown) =>
    pacsDestinationSchema.parse({
      type: 'dicom',
      name,
      host: '127.0.0.1',
      port: pacs.port,
      aeTitle: 'PACS',
      ...(storageCommitment === undefined ? {} : { storageCommitment }),
    });
  const plain = entry('plain');
  t.deepEqual(plain.type === 'dicom' ? plain.storageCommitment : undefined, { enabled: false, timeoutSeconds: 300 });
  t.throws(() => entry('bad', { enabled: true, timeoutSeconds: 0 }));
  const built = createDestinations(
    { pacs: [plain, entry('committed', { enabled: true, timeoutSeconds: 10 })], ris: [] },
    'CXR_GATEWAY',
    logger,
    undefined,
    registry,
  );
  const image = makeImageFile({});
  t.deepEqual(await built.pacs.get('plain')?.deliver([{ bytes: image.bytes }]), { kind: 'delivered' });
  t.is(pacs.requests.length, 0, 'no N-ACTION without storageCommitment.enabled');
  t.deepEqual(await built.pacs.get('committed')?.deliver([{ bytes: image.bytes }]), { kind: 'delivered' });
  t.is(pacs.requests.length, 1);
  t.deepEqual(pacs.requests[0]?.referenced, [{ sopClassUid: image.sopClassUid, sopInstanceUid: image.sopInstanceUid }]);
});

test('stopping the destination while it waits for the report: the delivery answers retry (stopped) at once', async (t) => {
  const pacs = await commitmentPacs({ neverReport: true });
  t.teardown(() => pacs.close());
  const { logger, registry } = setup();
  const target = destination(pacs.port, registry, logger);
  const image = makeImageFile({});
  const delivering = target.deliver([{ bytes: image.bytes }]);
  await waitUntil(() => registry.waiting === 1 && pacs.requests.length === 1, 'the N-ACTION answered', 5000);
  await target.stop();
  t.like(await delivering, { kind: 'retry', cause: 'stopped' });
  t.is(registry.waiting, 0);
});
