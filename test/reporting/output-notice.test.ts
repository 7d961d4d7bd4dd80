import test from 'ava';
import { seriesDescription } from '../../src/reporting/output-notice.js';

test('series descriptions fit LO (64 characters) and keep the usage notice whole', (t) => {
  t.is(
    seriesDescription({ what: 'AI heatmap (LRP)', usageNotice: 'NOT FOR DIAGNOSTIC USE' }),
    'AI heatmap (LRP) - NOT FOR DIAGNOSTIC USE',
  );
  t.is(
    seriesDescription({ what: 'AI heatmap (LRP)', usageNotice: 'NOT FOR DIAGNOSTIC USE', supersedesRevision: 3 }),
    'AI heatmap (LRP) corrected, replaces r3 - NOT FOR DIAGNOSTIC USE',
  );
  const long = seriesDescription({
    what: 'AI heatmap (LRP)',
    usageNotice: 'NOT FOR DIAGNOSTIC USE',
    supersedesRevision: 12345,
  });
  t.is(long, 'AI heatmap (LRP) corrected - NOT FOR DIAGNOSTIC USE');
  t.is(seriesDescription({ what: 'AI heatmap (LRP)', usageNotice: '' }), 'AI heatmap (LRP)');
  t.true(seriesDescription({ what: 'x'.repeat(80), usageNotice: 'NOT FOR DIAGNOSTIC USE' }).length <= 64);
});
