import test from 'ava';
import { PassThrough } from 'node:stream';
import { CommitmentRegistry } from '../../src/dimse/commitment-registry.js';
import { CommandElement, CommandField, encodeCommand } from '../../src/dimse/dimse-messages.js';
import { ScuAssociation } from '../../src/dimse/scu-association.js';
import {
  REQUEST_STORAGE_COMMITMENT,
  STORAGE_COMMITMENT_INSTANCE,
  STORAGE_COMMITMENT_PUSH_MODEL,
  encodeCommitmentDataset,
} from '../../src/dimse/storage-commitment.js';
import { requestCommitment } from '../../src/dimse/storage-commitment-scu.js';
import type { ScuPeer } from '../../src/dimse/storage-scu.js';
import { createLogger } from '../../src/logging/logger.js';
import { commitmentPacs } from '../helpers/commitment-pacs.js';
import { waitUntil } from '../helpers/wait-until.js';

// The N-ACTION side on its own, against the stand-in PACS: what the request carries, and each way it can fail.

const INSTANCES = [{ sopClassUid: '1.2.840.10008.5.1.4.1.1.7', sopInstanceUid: '1.2.3.99' }];

function peer(port: number): ScuPeer {
  return {
    host: '127.0.0.1',
    port,
    calledAeTitle: 'PACS',
    callingAeTitle: 'CXR_GATEWAY',
    connectTimeoutMs: 2000,
    responseTimeoutMs: 5000,
  };
}

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

test('the N-ACTION carries the Transaction UID and every instance; the report on the same association is answered', async (t) => {
  const pacs = await commitmentPacs();
  t.teardown(() => pacs.close());
  const { logger, lines, registry } = setup();
  const wait = registry.expect('2.25.100', 5000);
  const outcome = await requestCommitment(peer(pacs.port), '2.25.100', INSTANCES, {
    logger,
    registry,
    holdUntil: wait.result,
  });
  t.deepEqual(outcome, { kind: 'requested' });
  t.deepEqual(pacs.requests, [{ transactionUid: '2.25.100', referenced: INSTANCES, failed: [] }]);
  t.like(await wait.result, { kind: 'reported', report: { via: 'same-association', transactionUid: '2.25.100' } });
  t.like(
    lines.find((l) => l.event === 'DIMSE-1201'),
    { transactionUid: '2.25.100', instances: 1 },
  );
});

test('a PACS that refuses the Push Model context: failed, saying what to enable', async (t) => {
  const pacs = await commitmentPacs({ acceptCommitment: false });
  t.teardown(() => pacs.close());
  const { logger, lines, registry } = setup();
  const outcome = await requestCommitment(peer(pacs.port), '2.25.101', INSTANCES, {
    logger,
    registry,
    holdUntil: Promise.resolve(),
  });
  t.like(outcome, { kind: 'failed' });
  t.regex(outcome.kind === 'failed' ? outcome.reason : '', /did not accept the Storage Commitment Push Model/);
  t.is(pacs.requests.length, 0);
  t.truthy(lines.find((l) => l.event === 'DIMSE-1206'));
});

test('an N-ACTION answered with a failure status: failed, naming the status', async (t) => {
  const pacs = await commitmentPacs({ actionStatus: 0x0110 });
  t.teardown(() => pacs.close());
  const { logger, registry } = setup();
  const outcome = await requestCommitment(peer(pacs.port), '2.25.102', INSTANCES, {
    logger,
    registry,
    holdUntil: Promise.resolve(),
  });
  t.like(outcome, { kind: 'failed' });
  t.regex(outcome.kind === 'failed' ? outcome.reason : '', /refused the storage commitment request with status 0x0110/);
});

test('nobody listening: failed, naming the refused connection', async (t) => {
  const pacs = await commitmentPacs();
  const { port } = pacs;
  await pacs.close();
  const { logger, registry } = setup();
  const outcome = await requestCommitment(peer(port), '2.25.103', INSTANCES, {
    logger,
    registry,
    holdUntil: Promise.resolve(),
  });
  t.like(outcome, { kind: 'failed' });
  t.regex(
    outcome.kind === 'failed' ? outcome.reason : '',
    /no association with PACS@127\.0\.0\.1:\d+: connection-refused/,
  );
});

test('an association without a request handler answers a peer request 0x0211 (unrecognized operation)', async (t) => {
  const pacs = await commitmentPacs();
  t.teardown(() => pacs.close());
  const association = await ScuAssociation.open({
    host: '127.0.0.1',
    port: pacs.port,
    callingAeTitle: 'CXR_GATEWAY',
    calledAeTitle: 'PACS',
    contexts: [{ id: 1, abstractSyntax: STORAGE_COMMITMENT_PUSH_MODEL, transferSyntaxes: ['1.2.840.10008.1.2.1'] }],
    connectTimeoutMs: 2000,
    responseTimeoutMs: 5000,
  });
  if (!(association instanceof ScuAssociation)) return t.fail(JSON.stringify(association));
  const command = encodeCommand([
    [CommandElement.RequestedSopClassUid, { ui: STORAGE_COMMITMENT_PUSH_MODEL }],
    [CommandElement.CommandField, { us: CommandField.NActionRq }],
    [CommandElement.MessageId, { us: 1 }],
    [CommandElement.CommandDataSetType, { us: 0 }],
    [CommandElement.RequestedSopInstanceUid, { ui: STORAGE_COMMITMENT_INSTANCE }],
    [CommandElement.ActionTypeId, { us: REQUEST_STORAGE_COMMITMENT }],
  ]);
  const dataset = encodeCommitmentDataset(
    { transactionUid: '2.25.104', referenced: INSTANCES, failed: [] },
    '1.2.840.10008.1.2.1',
  );
  await association.request(1, 1, command, dataset);
  await waitUntil(() => pacs.reportAnswers.length > 0, 'our answer to the report', 5000);
  await association.release();
  t.is(pacs.reportAnswers[0]?.status, 0x0211);
});
