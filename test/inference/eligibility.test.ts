import test from 'ava';
import { DEFAULT_ELIGIBILITY, checkEligibility } from '../../src/inference/eligibility.js';

test('frontal chest CR and DX images are classified', (t) => {
  t.deepEqual(
    checkEligibility({ modality: 'DX', bodyPartExamined: 'CHEST', viewPosition: 'PA' }, DEFAULT_ELIGIBILITY),
    { eligible: true },
  );
  t.deepEqual(
    checkEligibility({ modality: 'CR', bodyPartExamined: 'chest', viewPosition: 'AP ' }, DEFAULT_ELIGIBILITY),
    { eligible: true },
  );
});

test('laterals, other body parts and unknown views are skipped with the reason', (t) => {
  t.deepEqual(
    checkEligibility({ modality: 'DX', bodyPartExamined: 'CHEST', viewPosition: 'LL' }, DEFAULT_ELIGIBILITY),
    {
      eligible: false,
      reason: 'ViewPosition is LL, not one of PA, AP',
    },
  );
  t.like(checkEligibility({ modality: 'DX', bodyPartExamined: 'HAND', viewPosition: 'PA' }, DEFAULT_ELIGIBILITY), {
    reason: 'BodyPartExamined is HAND, not one of CHEST',
  });
  t.like(checkEligibility({ modality: 'DX', bodyPartExamined: 'CHEST' }, DEFAULT_ELIGIBILITY), {
    reason: 'ViewPosition is empty (classified: PA, AP)',
  });
  t.like(checkEligibility({ modality: 'CT', bodyPartExamined: 'CHEST', viewPosition: 'PA' }, DEFAULT_ELIGIBILITY), {
    eligible: false,
  });
});

test('the rules are configuration: a site may add THORAX or LL', (t) => {
  const rules = { ...DEFAULT_ELIGIBILITY, bodyParts: ['CHEST', 'THORAX'], viewPositions: ['PA', 'AP', 'LL'] };
  t.true(checkEligibility({ modality: 'DX', bodyPartExamined: 'THORAX', viewPosition: 'LL' }, rules).eligible);
});
