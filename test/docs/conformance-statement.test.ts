// docs/conformance-statement.md against the code: every table that restates a list the code keeps (SOP classes,
// transfer syntaxes, status codes, character sets) must hold exactly that list, so that the statement a PACS team
// reads cannot drift from what the gateway negotiates and answers.
import test from 'ava';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { dicomSchema, secondaryCaptureSchema } from '../../src/config/schema.js';
import { characterSetKey, knownCharacterSetKeys } from '../../src/dicom/character-sets.js';
import { IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME } from '../../src/dicom/implementation.js';
import { DEFAULT_STORAGE_SOP_CLASSES, SopClass } from '../../src/dicom/sop-classes.js';
import { DEFAULT_TRANSFER_SYNTAXES } from '../../src/dicom/transfer-syntaxes.js';
import { DimseStatus } from '../../src/dimse/dimse-messages.js';
import { StoreStatus } from '../../src/dimse/dimse-status.js';
import { STORAGE_COMMITMENT_INSTANCE, STORAGE_COMMITMENT_PUSH_MODEL } from '../../src/dimse/storage-commitment.js';
import { packageRoot } from '../../src/reporting/package-root.js';
import { KEY_OBJECT_SELECTION_SOP_CLASS_UID } from '../../src/reporting/rejection-note.js';
import { SC_SOP_CLASS_UID } from '../../src/reporting/secondary-capture.js';
import { SC_ENCODINGS, SC_ENCODING_SYNTAX } from '../../src/reporting/sc-encoding-types.js';
import { COMPREHENSIVE_SR_SOP_CLASS_UID } from '../../src/reporting/structured-report.js';

const doc = readFileSync(path.join(packageRoot(), 'docs/conformance-statement.md'), 'utf8');

/** The first back-quoted value of each body row of the table that follows `<!-- table: name -->`. */
function tableKeys(name: string): string[] {
  const lines = doc.split('\n');
  const start = lines.findIndex((line) => line.trim() === `<!-- table: ${name} -->`);
  if (start < 0) throw new Error(`docs/conformance-statement.md has no table '${name}'`);
  const rows: string[] = [];
  for (const line of lines.slice(start + 1)) {
    if (!line.trim().startsWith('|')) break;
    rows.push(line);
  }
  // Header and separator row first.
  return rows.slice(2).map((row) => {
    const match = /`([^`]+)`/.exec(row);
    if (match?.[1] === undefined) throw new Error(`a row of table '${name}' has no back-quoted value: ${row}`);
    return match[1];
  });
}

const sorted = (values: Iterable<string>): string[] => [...values].sort();
const hex = (status: number): string => `0x${status.toString(16).toUpperCase().padStart(4, '0')}`;

test('the SCP SOP class table is Verification plus the default accepted storage SOP classes', (t) => {
  t.deepEqual(tableKeys('scp-sop-classes'), [SopClass.Verification, ...DEFAULT_STORAGE_SOP_CLASSES]);
  t.deepEqual(dicomSchema.parse({}).acceptedSopClasses, [...DEFAULT_STORAGE_SOP_CLASSES]);
});

test('the SCP transfer syntax table is the default list, in our order of preference', (t) => {
  t.deepEqual(tableKeys('scp-transfer-syntaxes'), [...DEFAULT_TRANSFER_SYNTAXES]);
  t.deepEqual(dicomSchema.parse({}).transferSyntaxes, [...DEFAULT_TRANSFER_SYNTAXES]);
});

test('the SCP status table is every status the SCP answers with', (t) => {
  const code = new Set([...Object.values(StoreStatus), ...Object.values(DimseStatus)].map(hex));
  const table = tableKeys('scp-status-codes');
  t.is(new Set(table).size, table.length, 'no status listed twice');
  t.deepEqual(sorted(table), sorted(code));
});

test('the SCU SOP class table is Verification plus every object the gateway writes', (t) => {
  const written = [
    ...Object.values(SC_SOP_CLASS_UID),
    COMPREHENSIVE_SR_SOP_CLASS_UID,
    KEY_OBJECT_SELECTION_SOP_CLASS_UID,
  ];
  t.deepEqual(sorted(tableKeys('scu-sop-classes')), sorted([SopClass.Verification, ...written]));
});

test('the SC transfer syntax table is every secondaryCapture.encoding, in order, and names the default', (t) => {
  t.deepEqual(
    tableKeys('scu-sc-transfer-syntaxes'),
    SC_ENCODINGS.map((e) => SC_ENCODING_SYNTAX[e]),
  );
  for (const encoding of SC_ENCODINGS) t.true(doc.includes(`| \`${encoding}\``), `${encoding} has its row`);
  t.true(
    doc.includes(`\`secondaryCapture.encoding\` names (default \`${secondaryCaptureSchema.parse({}).encoding}\`)`),
  );
});

test('the character set table holds exactly the terms the decoder knows', (t) => {
  const table = tableKeys('character-sets');
  const keys = table.map(characterSetKey);
  t.is(new Set(keys).size, keys.length, 'no character set listed twice');
  t.deepEqual(sorted(keys), sorted(knownCharacterSetKeys()));
});

test('the implementation identity and the association defaults are the ones the code uses', (t) => {
  t.true(doc.includes(`\`${IMPLEMENTATION_CLASS_UID}\``));
  t.true(doc.includes(`\`${IMPLEMENTATION_VERSION_NAME}\``));
  const d = dicomSchema.parse({});
  const defaults: [string, number][] = [
    ['dicom.maxAssociations', d.maxAssociations],
    ['dicom.maxConnectionsPerSource', d.maxConnectionsPerSource],
    ['dicom.maxPduLength', d.maxPduLength],
    ['dicom.associationRequestTimeoutSeconds', d.associationRequestTimeoutSeconds],
    ['dicom.idleTimeoutSeconds', d.idleTimeoutSeconds],
    ['dicom.shutdownGraceSeconds', d.shutdownGraceSeconds],
    ['dicom.port', d.port],
  ];
  for (const [key, value] of defaults) {
    t.regex(
      doc,
      new RegExp(`\`${key.replace(/\./g, '\\.')}\`\\s+\\(default\\s+${value}\\b`),
      `${key} default ${value}`,
    );
  }
  t.regex(doc, new RegExp(`\`dicom\\.aeTitle\`,\\s+default\\s+\`${d.aeTitle}\``));
});

test('the storage commitment table is the Push Model SOP class and its well-known instance the code uses', (t) => {
  t.deepEqual(tableKeys('storage-commitment'), [STORAGE_COMMITMENT_PUSH_MODEL, STORAGE_COMMITMENT_INSTANCE]);
});
