import test from 'ava';
import { DEFAULT_STORAGE_SOP_CLASSES, SopClass } from '../../src/dicom/sop-classes.js';
import { DEFAULT_TRANSFER_SYNTAXES, TransferSyntax } from '../../src/dicom/transfer-syntaxes.js';
import { negotiateContext } from '../../src/dimse/presentation-contexts.js';

const policy = { sopClasses: new Set(DEFAULT_STORAGE_SOP_CLASSES), transferSyntaxes: DEFAULT_TRANSFER_SYNTAXES };
const DX = SopClass.DigitalXRayImageStorageForPresentation;
const CT = '1.2.840.10008.5.1.4.1.1.2';

test("takes the proposer's first acceptable syntax, so a compressed image is stored as sent", (t) => {
  const answer = negotiateContext(DX, [TransferSyntax.JpegLosslessSV1, TransferSyntax.ExplicitVRLittleEndian], policy);
  t.deepEqual(answer, { result: 'accept', transferSyntax: TransferSyntax.JpegLosslessSV1 });
});

test('skips syntaxes we do not take, such as big endian', (t) => {
  const answer = negotiateContext(DX, ['1.2.840.10008.1.2.2', TransferSyntax.ImplicitVRLittleEndian], policy);
  t.deepEqual(answer, { result: 'accept', transferSyntax: TransferSyntax.ImplicitVRLittleEndian });
});

test('every syntax of the issue is acceptable for CR and DX', (t) => {
  for (const ts of Object.values(TransferSyntax)) {
    for (const sop of DEFAULT_STORAGE_SOP_CLASSES) {
      t.like(negotiateContext(sop, [ts], policy), { result: 'accept', transferSyntax: ts }, `${sop} ${ts}`);
    }
  }
});

test('a non-image or unconfigured SOP class is rejected as abstract syntax not supported', (t) => {
  t.deepEqual(negotiateContext(CT, [TransferSyntax.ExplicitVRLittleEndian], policy), {
    result: 'abstract-syntax-not-supported',
  });
  t.deepEqual(negotiateContext('1.2.840.10008.5.1.4.1.1.88.11', [TransferSyntax.ExplicitVRLittleEndian], policy), {
    result: 'abstract-syntax-not-supported',
  });
});

test('only unsupported syntaxes: transfer syntaxes not supported', (t) => {
  t.deepEqual(negotiateContext(DX, ['1.2.840.10008.1.2.4.100'], policy), { result: 'transfer-syntaxes-not-supported' });
});

test('verification is always accepted, uncompressed', (t) => {
  t.deepEqual(negotiateContext(SopClass.Verification, [TransferSyntax.ImplicitVRLittleEndian], policy), {
    result: 'accept',
    transferSyntax: TransferSyntax.ImplicitVRLittleEndian,
  });
});
