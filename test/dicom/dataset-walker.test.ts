import test from 'ava';
import { deflateRawSync } from 'node:zlib';
import { MalformedDatasetError, walkDatasetBuffer } from '../../src/dicom/dataset-walker.js';
import { TransferSyntax } from '../../src/dicom/transfer-syntaxes.js';
import { makeImageFile } from '../helpers/dicom-factory.js';
import { datasetBytesOfPart10 } from '../helpers/raw-scu.js';

/** Explicit VR little endian element bytes, for datasets the factory cannot make. */
function el(group: number, element: number, vr: string, value: Buffer | 'undefined-length'): Buffer {
  const long = ['OB', 'OW', 'SQ', 'UN', 'UT'].includes(vr);
  const header = Buffer.alloc(long ? 12 : 8);
  header.writeUInt16LE(group, 0);
  header.writeUInt16LE(element, 2);
  header.write(vr, 4, 'latin1');
  const length = value === 'undefined-length' ? 0xffffffff : value.length;
  if (long) header.writeUInt32LE(length, 8);
  else header.writeUInt16LE(length, 6);
  return value === 'undefined-length' ? header : Buffer.concat([header, value]);
}
const tag = (group: number, element: number, length: number) => {
  const b = Buffer.alloc(8);
  b.writeUInt16LE(group, 0);
  b.writeUInt16LE(element, 2);
  b.writeUInt32LE(length, 4);
  return b;
};
const str = (s: string) => Buffer.from(s.length % 2 ? `${s}\0` : s, 'latin1');

test('reads the key attributes of an explicit VR image and sees its pixel data', (t) => {
  const image = makeImageFile({ bodyPartExamined: 'CHEST', viewPosition: 'AP', accessionNumber: 'A123' });
  const walked = walkDatasetBuffer(datasetBytesOfPart10(image.bytes).dataset, TransferSyntax.ExplicitVRLittleEndian);
  t.like(walked.attributes, {
    sopInstanceUid: image.sopInstanceUid,
    sopClassUid: image.sopClassUid,
    studyInstanceUid: image.studyInstanceUid,
    seriesInstanceUid: image.seriesInstanceUid,
    modality: 'DX',
    bodyPartExamined: 'CHEST',
    viewPosition: 'AP',
    accessionNumber: 'A123',
  });
  t.true(walked.hasPixelData);
});

test('reads implicit VR and deflated datasets alike', (t) => {
  const implicit = makeImageFile({ transferSyntax: 'implicit' });
  const a = walkDatasetBuffer(datasetBytesOfPart10(implicit.bytes).dataset, TransferSyntax.ImplicitVRLittleEndian);
  t.is(a.attributes.studyInstanceUid, implicit.studyInstanceUid);
  const explicit = makeImageFile({});
  const deflated = deflateRawSync(datasetBytesOfPart10(explicit.bytes).dataset);
  const b = walkDatasetBuffer(deflated, TransferSyntax.DeflatedExplicitVRLittleEndian);
  t.is(b.attributes.sopInstanceUid, explicit.sopInstanceUid);
});

test('walks undefined-length sequences and items, and ignores attributes nested inside them', (t) => {
  const dataset = Buffer.concat([
    el(0x0008, 0x0016, 'UI', str('1.2.840.10008.5.1.4.1.1.1.1')),
    el(0x0008, 0x0018, 'UI', str('1.2.3.4')),
    el(0x0008, 0x1140, 'SQ', 'undefined-length'),
    tag(0xfffe, 0xe000, 0xffffffff),
    el(0x0008, 0x0018, 'UI', str('9.9.9')),
    tag(0xfffe, 0xe00d, 0),
    tag(0xfffe, 0xe0dd, 0),
    el(0x0020, 0x000d, 'UI', str('1.2.3')),
    el(0x7fe0, 0x0010, 'OB', 'undefined-length'),
    tag(0xfffe, 0xe000, 0),
    tag(0xfffe, 0xe000, 4),
    Buffer.from([1, 2, 3, 4]),
    tag(0xfffe, 0xe0dd, 0),
  ]);
  const walked = walkDatasetBuffer(dataset, TransferSyntax.JpegLosslessSV1);
  t.is(walked.attributes.sopInstanceUid, '1.2.3.4');
  t.is(walked.attributes.studyInstanceUid, '1.2.3');
  t.true(walked.hasPixelData);
  t.is(walked.elementCount, 5);
});

test('a fragment cut short, or a sequence without its delimiter, is a truncated dataset', (t) => {
  const fragments = Buffer.concat([
    el(0x0008, 0x0018, 'UI', str('1.2.3.4')),
    el(0x7fe0, 0x0010, 'OB', 'undefined-length'),
    tag(0xfffe, 0xe000, 0),
    tag(0xfffe, 0xe000, 400),
    Buffer.alloc(100),
  ]);
  const e1 = t.throws(() => walkDatasetBuffer(fragments, TransferSyntax.JpegLosslessSV1), {
    instanceOf: MalformedDatasetError,
  });
  t.regex(e1.message, /^truncated: pixel data fragment/);
  const unterminated = Buffer.concat([el(0x0008, 0x1140, 'SQ', 'undefined-length'), tag(0xfffe, 0xe000, 0)]);
  const e2 = t.throws(() => walkDatasetBuffer(unterminated, TransferSyntax.ExplicitVRLittleEndian));
  t.regex(e2.message, /^truncated/);
});

test('native pixel data shorter than its length is a truncated dataset; noise is garbled', (t) => {
  const image = datasetBytesOfPart10(makeImageFile({}).bytes).dataset;
  const e = t.throws(() =>
    walkDatasetBuffer(image.subarray(0, image.length - 1), TransferSyntax.ExplicitVRLittleEndian),
  );
  t.regex(e.message, /^truncated: \(7FE0,0010\)/);
  const noise = Buffer.from('this is not a DICOM dataset at all, just some text.');
  t.throws(() => walkDatasetBuffer(noise, TransferSyntax.ExplicitVRLittleEndian), { message: /^(garbled|truncated)/ });
});
