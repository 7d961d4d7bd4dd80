import test from 'ava';
import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { RisFolderDestination } from '../../src/export/ris-folder-destination.js';
import { createLogger } from '../../src/logging/logger.js';
import { makeReadOnly } from './read-only-folder.js';

const scratch = mkdtempSync(path.join(os.tmpdir(), 'ris-folder-'));
const logger = createLogger({
  level: 'error',
  format: 'json',
  stream: new Writable({ write: (_chunk, _encoding, callback) => callback() }),
});

function destinationIn(folder: string): RisFolderDestination {
  return new RisFolderDestination({ name: 'ris-folder', path: folder, logger });
}

function oru(controlId: string): string {
  return [
    `MSH|^~\\&|CXR_GATEWAY|HOSP|RIS||20240102101500||ORU^R01^ORU_R01|${controlId}|P|2.5.1|||AL|NE`,
    'PID|1||CXRTEST0001^^^HOSP||Test^Synthetic',
    'OBX|1|ST|113014^DICOM Study^DCM||1.2.3.4||||||P',
  ].join('\r');
}

test('writes <controlId>.hl7 with the message bytes, \\r separators kept, and no temp file left', async (t) => {
  const folder = path.join(mkdtempSync(path.join(scratch, 'out-')), 'hl7');
  const message = oru('CXR00042A');
  t.deepEqual(await destinationIn(folder).deliver([{ controlId: 'CXR00042A', message }]), { kind: 'delivered' });
  t.deepEqual(readdirSync(folder), ['CXR00042A.hl7']);
  const written = readFileSync(path.join(folder, 'CXR00042A.hl7'));
  t.true(written.equals(Buffer.from(message, 'utf8')));
  t.is(written.toString().split('\r').length, 3);
  t.false(written.includes('\n'));
});

test('delivering the same message again leaves one identical file; a message file works as well', async (t) => {
  const folder = mkdtempSync(path.join(scratch, 'out-'));
  const source = path.join(mkdtempSync(path.join(scratch, 'src-')), 'message.hl7');
  writeFileSync(source, oru('CXR7'));
  const destination = destinationIn(folder);
  t.deepEqual(await destination.deliver([{ controlId: 'CXR7', path: source }]), { kind: 'delivered' });
  t.deepEqual(await destination.deliver([{ controlId: 'CXR7', message: oru('CXR7') }]), { kind: 'delivered' });
  t.deepEqual(readdirSync(folder), ['CXR7.hl7']);
  t.is(readFileSync(path.join(folder, 'CXR7.hl7'), 'utf8'), oru('CXR7'));
});

test('a read-only target folder is a retry whose reason names the folder and the refusal', async (t) => {
  const folder = mkdtempSync(path.join(scratch, 'read-only-'));
  const undo = await makeReadOnly(folder);
  t.teardown(undo);
  const outcome = await destinationIn(folder).deliver([{ controlId: 'CXR1', message: oru('CXR1') }]);
  t.like(outcome, { kind: 'retry', cause: 'folder-not-writable' });
  t.regex(
    outcome.kind === 'retry' ? outcome.reason : '',
    new RegExp(`cannot write into ${folder.replace(/[.]/g, '\\.')}: permission denied \\((EACCES|EPERM)\\)`),
  );
  t.deepEqual(readdirSync(folder), []);
});

test('a control ID that is not a safe file name, or not the message MSH-10, parks the message', async (t) => {
  const folder = mkdtempSync(path.join(scratch, 'out-'));
  const outcome = await destinationIn(folder).deliver([
    { controlId: '../escape', message: oru('../escape') },
    { controlId: 'CXR2', message: oru('CXR3') },
    { controlId: 'CXR4', message: oru('CXR4') },
  ]);
  t.like(outcome, { kind: 'parked', cause: 'invalid-message' });
  const reason = outcome.kind === 'parked' ? outcome.reason : '';
  t.regex(reason, /control ID '\.\.\/escape' cannot be a file name/);
  t.regex(reason, /message CXR2: its MSH-10 is 'CXR3'/);
  t.deepEqual(readdirSync(folder), ['CXR4.hl7']);
  t.deepEqual(
    readdirSync(path.dirname(folder)).filter((n) => n.includes('escape')),
    [],
  );
});
