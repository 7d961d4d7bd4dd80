import test from 'ava';
import { existsSync, mkdtempSync, readdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { writeImageFile } from '../helpers/dicom-factory.js';
import { echoscu, storescu } from '../helpers/dcmtk.js';
import { startGateway } from '../helpers/gateway-process.js';
import { EXPLICIT_VR_LITTLE_ENDIAN, openAssociation, type RawAssociation } from '../helpers/raw-scu.js';

const verification = { abstractSyntax: '1.2.840.10008.1.1', transferSyntaxes: [EXPLICIT_VR_LITTLE_ENDIAN] };

test('only listed calling AEs get in, each from its bound host; others are rejected with reason 3', async (t) => {
  const gateway = await startGateway({
    dicom: {
      callers: {
        allowAny: false,
        allowed: [
          { aeTitle: 'DX_ROOM1' },
          { aeTitle: 'CR_WARD', host: '127.0.0.1' },
          { aeTitle: 'ELSEWHERE', host: '10.9.9.9' },
        ],
      },
    },
  });
  t.teardown(() => gateway.stop());
  t.is((await echoscu(gateway.port, { callingAe: 'DX_ROOM1' })).code, 0);
  t.is((await echoscu(gateway.port, { callingAe: 'CR_WARD' })).code, 0);

  const unknown = await echoscu(gateway.port, { callingAe: 'CT01' });
  t.not(unknown.code, 0);
  t.regex(unknown.stderr + unknown.stdout, /Calling AE Title Not Recognized/i);
  const wrongHost = await echoscu(gateway.port, { callingAe: 'ELSEWHERE' });
  t.not(wrongHost.code, 0);
  const logged = gateway.logs.filter((l) => l.event === 'DIMSE-1003');
  t.deepEqual(
    logged.map((l) => [l.callingAe, l.reason]),
    [
      ['CT01', 3],
      ['ELSEWHERE', 3],
    ],
  );
  t.regex(String(logged[1]?.why), /connected from 127\.0\.0\.1, but dicom\.callers\.allowed binds it to 10\.9\.9\.9/);
});

test('a wrong called AE title is rejected with reason 7', async (t) => {
  const gateway = await startGateway();
  t.teardown(() => gateway.stop());
  const result = await echoscu(gateway.port, { calledAe: 'SOMEONE_ELSE' });
  t.not(result.code, 0);
  t.regex(result.stderr + result.stdout, /Called AE Title Not Recognized/i);
});

test('over the association limit a caller is rejected transiently, and gets in once one closes', async (t) => {
  const gateway = await startGateway({ dicom: { maxAssociations: 2 } });
  t.teardown(() => gateway.stop());
  const open = async () =>
    openAssociation({
      host: '127.0.0.1',
      port: gateway.port,
      callingAe: 'HOLDER',
      calledAe: 'CXR_GATEWAY',
      contexts: [verification],
    });
  const first = (await open()) as RawAssociation;
  const second = (await open()) as RawAssociation;
  t.false(first.rejected);
  t.false(second.rejected);
  const third = await open();
  t.like(third, { rejected: true, result: 2, source: 3, reason: 2 });
  await first.release();
  // The gateway counts the association as closed when the socket closes; poll with the real peer.
  let code: number | null = 1;
  for (let i = 0; i < 50 && code !== 0; i += 1) {
    code = (await echoscu(gateway.port)).code;
    if (code !== 0) await new Promise((resolve) => setTimeout(resolve, 100));
  }
  t.is(code, 0);
  await second.release();
});

test('an idle association is aborted after dicom.idleTimeoutSeconds', async (t) => {
  const gateway = await startGateway({ dicom: { idleTimeoutSeconds: 1 } });
  t.teardown(() => gateway.stop());
  const association = (await openAssociation({
    host: '127.0.0.1',
    port: gateway.port,
    callingAe: 'SLEEPY',
    calledAe: 'CXR_GATEWAY',
    contexts: [verification],
  })) as RawAssociation;
  t.is(await association.echo(), 0);
  await association.closed;
  t.true(association.closedByPeer() || association.abortReceived !== undefined);
});

test('below the free-disk floor a C-STORE is refused with 0xA700 and nothing is written', async (t) => {
  const gateway = await startGateway({ storage: { minFreeDiskMB: 1e12 } });
  t.teardown(() => gateway.stop());
  const dir = mkdtempSync(path.join(os.tmpdir(), 'floor-'));
  const file = await writeImageFile(dir, { sopClass: 'dx-presentation' });
  const result = await storescu(gateway.port, [file.path]);
  t.not(result.code, 0);
  const refusal = await gateway.waitForLog((l) => l.event === 'DIMSE-1022', 'the refusal');
  t.is(refusal.status, '0xa700');
  t.regex(String(refusal.why), /storage\.minFreeDiskMB/);
  const studies = path.join(gateway.workDir, 'data', 'spool', 'studies');
  t.true(!existsSync(studies) || readdirSync(studies).length === 0);
  t.deepEqual(readdirSync(path.join(gateway.workDir, 'data', 'spool', 'incoming')), []);
});
