import test from 'ava';
import { isValidUid } from '../../src/dicom/uids.js';
import {
  derivedInstanceUid,
  derivedSeriesUid,
  studyInstanceUid,
  uidFromParts,
  type InstanceUidKey,
} from '../../src/reporting/derived-uids.js';
import { outputSeriesNumber } from '../../src/reporting/series-numbers.js';

const KEY: InstanceUidKey = {
  sourceSopInstanceUid: '2.25.100',
  model: { modelUid: '2.25.7', version: '1.0.0' },
  kind: 'heatmap-sc',
  revision: 0,
};

test('a derived UID is 2.25 + the decimal of an RFC 9562 version 8 UUID, valid and at most 64 characters', (t) => {
  const uid = derivedInstanceUid(KEY);
  t.regex(uid, /^2\.25\.[1-9][0-9]*$/);
  t.true(isValidUid(uid));
  t.true(uid.length <= 64);
  const hex = BigInt(uid.slice(5)).toString(16).padStart(32, '0');
  t.is(hex[12], '8', 'version nibble');
  t.true(['8', '9', 'a', 'b'].includes(hex[16] ?? ''), 'variant bits 10');
});

test('the same key gives the same UID; each part of the key changes it', (t) => {
  const uid = derivedInstanceUid(KEY);
  t.is(derivedInstanceUid({ ...KEY, model: { ...KEY.model } }), uid);
  const variants = [
    derivedInstanceUid({ ...KEY, sourceSopInstanceUid: '2.25.101' }),
    derivedInstanceUid({ ...KEY, model: { ...KEY.model, version: '1.0.1' } }),
    derivedInstanceUid({ ...KEY, model: { ...KEY.model, modelUid: '2.25.8' } }),
    derivedInstanceUid({ ...KEY, kind: 'heatmap-mf-sc' }),
    derivedInstanceUid({ ...KEY, kind: 'classification-sr' }),
    derivedInstanceUid({ ...KEY, revision: 1 }),
    derivedInstanceUid({ ...KEY, variant: 'pneumonia' }),
  ];
  t.is(new Set([uid, ...variants]).size, variants.length + 1);
});

test('series UIDs depend on the study (not the source series), kind and revision, and differ from instance UIDs', (t) => {
  const key = { studyInstanceUid: '2.25.100', model: KEY.model, kind: 'heatmap-sc' as const, revision: 0 };
  const series = derivedSeriesUid(key);
  t.is(series, derivedSeriesUid({ ...key, model: { ...KEY.model } }));
  t.not(series, derivedInstanceUid(KEY), 'same source UID string, different role');
  const others = [
    derivedSeriesUid({ ...key, revision: 1 }),
    derivedSeriesUid({ ...key, studyInstanceUid: '2.25.101' }),
    derivedSeriesUid({ ...key, kind: 'classification-sr' }),
    derivedSeriesUid({ ...key, kind: 'rejection-kos' }),
    derivedSeriesUid({ ...key, model: { ...KEY.model, version: '1.0.1' } }),
    studyInstanceUid(key),
  ];
  t.is(new Set([series, ...others]).size, others.length + 1);
});

test('series numbers: revisions 0..3 never share one, and no kind shares one with another', (t) => {
  const kinds = ['heatmap', 'sr', 'rejection'] as const;
  const numbers = [0, 1, 2, 3].flatMap((revision) => kinds.map((kind) => outputSeriesNumber(kind, revision)));
  t.is(new Set(numbers).size, numbers.length);
  t.deepEqual(
    kinds.map((kind) => outputSeriesNumber(kind, 0)),
    [9001, 9002, 9003],
  );
  t.deepEqual(
    kinds.map((kind) => outputSeriesNumber(kind, 3)),
    [9031, 9032, 9033],
  );
  t.true(numbers.every((n) => n > 9000 && Number.isInteger(n)));
  t.throws(() => outputSeriesNumber('sr', -1), { message: /revision -1/ });
  t.throws(() => outputSeriesNumber('sr', 2 ** 31), { message: /revision/ });
});

test('parts are kept apart: moving a separator between parts changes the UID', (t) => {
  t.not(uidFromParts(['a|b', 'c']), uidFromParts(['a', 'b|c']));
  t.not(uidFromParts(['1', '23']), uidFromParts(['12', '3']));
});
