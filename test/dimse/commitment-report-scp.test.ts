import test from 'ava';
import { PassThrough, Writable } from 'node:stream';
import { dicomSchema } from '../../src/config/schema.js';
import { TransferSyntax } from '../../src/dicom/transfer-syntaxes.js';
import { ContextResult } from '../../src/dimse/association-pdus.js';
import { CommitmentRegistry } from '../../src/dimse/commitment-registry.js';
import { CommandElement, CommandField, encodeCommand, type Command } from '../../src/dimse/dimse-messages.js';
import { ScuAssociation } from '../../src/dimse/scu-association.js';
import {
  STORAGE_COMMITMENT_INSTANCE,
  STORAGE_COMMITMENT_PUSH_MODEL,
  encodeCommitmentDataset,
} from '../../src/dimse/storage-commitment.js';
import { StorageScp } from '../../src/dimse/storage-scp.js';
import { createLogger } from '../../src/logging/logger.js';
import type { IngestOutcome, InstanceSink } from '../../src/store/instance-sink.js';
import { freePort } from '../helpers/ports.js';

// Our Storage SCP as the receiver of storage commitment results on an association the PACS opens (PS3.4 J.3.3):
// the PACS proposes the Push Model with itself as SCP (role selection, PS3.7 D.3.3.4), we answer the roles, take
// the N-EVENT-REPORT, hand it to the registry and answer it.

const sink: InstanceSink = {
  begin: () => ({
    kind: 'transfer',
    transfer: {
      writable: new Writable({ write: (_chunk, _encoding, callback) => callback() }),
      complete: async (): Promise<IngestOutcome> => ({ kind: 'stored', studyInstanceUid: '1.2.3', path: '/dev/null' }),
      abandon: async () => undefined,
    },
  }),
};

async function scpWith(options: { registry: boolean; refusingRelay?: boolean }) {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new PassThrough();
  stream.on('data', (chunk: Buffer) => {
    for (const line of chunk.toString().split('\n'))
      if (line.trim() !== '') lines.push(JSON.parse(line) as Record<string, unknown>);
  });
  const logger = createLogger({ level: 'info', format: 'json', stream, captureLibraryOutput: false });
  const registry = new CommitmentRegistry({ logger });
  if (options.refusingRelay === true)
    registry.relayThrough({
      put: () => {
        throw new Error('database or disk is full');
      },
      take: () => [],
      expire: () => 0,
    });
  const port = await freePort();
  const scp = new StorageScp({
    config: { ...dicomSchema.parse({ host: '127.0.0.1' }), port },
    sink,
    logger,
    ...(options.registry ? { commitments: registry } : {}),
  });
  await scp.start();
  return { scp, port, registry, lines };
}

/** The PACS's side: an association to our SCP proposing the Push Model, optionally with itself as SCP. */
async function pacsAssociation(
  port: number,
  roles: 'scp' | 'scu' | 'default',
  syntax: string = TransferSyntax.ImplicitVRLittleEndian,
) {
  const opened = await ScuAssociation.open({
    host: '127.0.0.1',
    port,
    callingAeTitle: 'ORTHANC',
    calledAeTitle: 'CXR_GATEWAY',
    contexts: [{ id: 1, abstractSyntax: STORAGE_COMMITMENT_PUSH_MODEL, transferSyntaxes: [syntax] }],
    connectTimeoutMs: 2000,
    responseTimeoutMs: 5000,
    ...(roles === 'default'
      ? {}
      : {
          roleSelections: [
            { sopClassUid: STORAGE_COMMITMENT_PUSH_MODEL, scuRole: roles === 'scu', scpRole: roles === 'scp' },
          ],
        }),
  });
  if (!(opened instanceof ScuAssociation)) throw new Error(`no association: ${JSON.stringify(opened)}`);
  return opened;
}

function eventReport(messageId: number, eventTypeId: number, withDataset = true): Buffer {
  return encodeCommand([
    [CommandElement.AffectedSopClassUid, { ui: STORAGE_COMMITMENT_PUSH_MODEL }],
    [CommandElement.CommandField, { us: CommandField.NEventReportRq }],
    [CommandElement.MessageId, { us: messageId }],
    [CommandElement.CommandDataSetType, { us: withDataset ? 0 : 0x0101 }],
    [CommandElement.AffectedSopInstanceUid, { ui: STORAGE_COMMITMENT_INSTANCE }],
    [CommandElement.EventTypeId, { us: eventTypeId }],
  ]);
}

test('a report with failures on a new association: roles answered (PACS as SCP), Success answered, the failures reach the waiting delivery', async (t) => {
  const { scp, port, registry } = await scpWith({ registry: true });
  t.teardown(() => scp.stop(0));
  const wait = registry.expect('2.25.31', 10_000);
  const association = await pacsAssociation(port, 'scp');
  t.deepEqual(association.accepted?.roleSelections, [
    { sopClassUid: STORAGE_COMMITMENT_PUSH_MODEL, scuRole: false, scpRole: true },
  ]);
  t.like(association.accepted?.contexts[0], { id: 1, result: ContextResult.Acceptance });
  const dataset = encodeCommitmentDataset(
    {
      transactionUid: '2.25.31',
      referenced: [{ sopClassUid: '1.2.840.10008.5.1.4.1.1.7', sopInstanceUid: '1.2.3.1' }],
      failed: [{ sopClassUid: '1.2.840.10008.5.1.4.1.1.1.1', sopInstanceUid: '1.2.3.2', failureReason: 0x0112 }],
    },
    TransferSyntax.ImplicitVRLittleEndian,
  );
  const response = (await association.request(1, 5, eventReport(5, 2), dataset)) as Command;
  await association.release();
  // What Orthanc checks of the answer: status, both Affected UIDs, no data set (and the event type echoed).
  t.like(response, {
    commandField: CommandField.NEventReportRsp,
    messageIdBeingRespondedTo: 5,
    status: 0,
    affectedSopClassUid: STORAGE_COMMITMENT_PUSH_MODEL,
    affectedSopInstanceUid: STORAGE_COMMITMENT_INSTANCE,
    hasDataset: false,
    eventTypeId: 2,
  });
  const outcome = await wait.result;
  t.like(outcome, { kind: 'reported' });
  if (outcome.kind !== 'reported') return;
  t.like(outcome.report, { via: 'new-association', callingAe: 'ORTHANC', eventTypeId: 2 });
  t.deepEqual(outcome.report.failed, [
    { sopClassUid: '1.2.840.10008.5.1.4.1.1.1.1', sopInstanceUid: '1.2.3.2', failureReason: 0x0112 },
  ]);
});

test('without role selection the context is accepted too; a report nobody waits for is answered Success and logged', async (t) => {
  const { scp, port, lines } = await scpWith({ registry: true });
  t.teardown(() => scp.stop(0));
  const association = await pacsAssociation(port, 'default', TransferSyntax.ExplicitVRLittleEndian);
  t.deepEqual(association.accepted?.roleSelections, []);
  const dataset = encodeCommitmentDataset(
    { transactionUid: '2.25.404', referenced: [{ sopClassUid: '1.2', sopInstanceUid: '1.3' }], failed: [] },
    TransferSyntax.ExplicitVRLittleEndian,
  );
  const response = (await association.request(1, 1, eventReport(1, 1), dataset)) as Command;
  await association.release();
  t.is(response.status, 0);
  t.like(
    lines.find((l) => l.event === 'DIMSE-1204'),
    { transactionUid: '2.25.404', via: 'new-association' },
  );
});

test('an unreadable report, one without a data set or with an unknown event type gets a failure status; a PACS proposing only the SCU role is refused the context', async (t) => {
  const { scp, port, lines } = await scpWith({ registry: true });
  t.teardown(() => scp.stop(0));
  const association = await pacsAssociation(port, 'scp');
  const garbage = Buffer.from([0x08, 0x00, 0x95, 0x11, 0xff, 0x00, 0x00, 0x00]);
  const unreadable = (await association.request(1, 1, eventReport(1, 1), garbage)) as Command;
  t.is(unreadable.status, 0x0110);
  const dataset = encodeCommitmentDataset(
    { transactionUid: '2.25.5', referenced: [{ sopClassUid: '1.2', sopInstanceUid: '1.3' }], failed: [] },
    TransferSyntax.ImplicitVRLittleEndian,
  );
  const badEvent = (await association.request(1, 2, eventReport(2, 9), dataset)) as Command;
  t.is(badEvent.status, 0x0113);
  const noDataset = (await association.request(1, 3, eventReport(3, 1, false), undefined)) as Command;
  t.is(noDataset.status, 0x0110);
  await association.release();
  t.is(lines.filter((l) => l.event === 'DIMSE-1205').length, 3);

  const scuOnly = await pacsAssociation(port, 'scu');
  t.is(scuOnly.accepted?.contexts[0]?.result, ContextResult.UserRejection);
  await scuOnly.release();
});

test('an SCP without a registry refuses the storage commitment context (abstract syntax not supported)', async (t) => {
  const { scp, port } = await scpWith({ registry: false });
  t.teardown(() => scp.stop(0));
  const association = await pacsAssociation(port, 'scp');
  t.is(association.accepted?.contexts[0]?.result, ContextResult.AbstractSyntaxNotSupported);
  t.deepEqual(association.accepted?.roleSelections, []);
  await association.release();
});

test('a cluster node whose store will not keep a report another node waits for answers it with a failure (the PACS may send it again)', async (t) => {
  const { scp, port, lines } = await scpWith({ registry: true, refusingRelay: true });
  t.teardown(() => scp.stop(0));
  const association = await pacsAssociation(port, 'scp');
  const dataset = encodeCommitmentDataset(
    { transactionUid: '2.25.808', referenced: [{ sopClassUid: '1.2', sopInstanceUid: '1.3' }], failed: [] },
    TransferSyntax.ImplicitVRLittleEndian,
  );
  const response = (await association.request(1, 1, eventReport(1, 1), dataset)) as Command;
  await association.release();
  t.is(response.status, 0x0110);
  t.regex(String(lines.find((l) => l.event === 'DIMSE-1205')?.why), /could not keep the report.*disk is full/);
});
