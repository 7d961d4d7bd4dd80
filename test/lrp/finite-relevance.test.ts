import test from 'ava';
import { assertFiniteRelevance } from '../../src/lrp/finite-relevance.js';

test('a finite map passes; NaN or an infinity anywhere is LRP_NOT_FINITE, counted and located', (t) => {
  t.notThrows(() => assertFiniteRelevance(Float32Array.from([0, -1e30, 3e38]), 'map'));
  const error = t.throws(() =>
    assertFiniteRelevance(Float32Array.from([1, Number.NaN, 2, Number.NEGATIVE_INFINITY]), 'image 3'),
  );
  t.is((error as { code?: string }).code, 'LRP_NOT_FINITE');
  t.is(
    error?.message,
    'image 3: 2 of 4 relevance values are not finite (the first, NaN, at index 1); no heatmap is made from it',
  );
});
