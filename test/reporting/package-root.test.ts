import test from 'ava';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { renderBanner } from '../../src/reporting/banner.js';
import { divergingLut } from '../../src/reporting/heatmap-colormap.js';
import { packageRoot, packageVersion } from '../../src/reporting/package-root.js';
import { describeLrpParameters, outputModelInfo } from '../../src/reporting/report-inputs.js';

test('fonts and version are found from the installed code, whatever the working directory', (t) => {
  process.chdir(os.tmpdir()); // this test file runs in its own process (ava workerThreads: false)
  const root = packageRoot();
  const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { name: string; version: string };
  t.is(pkg.name, 'cxr-gateway');
  t.is(packageVersion(), pkg.version);
  const banner = renderBanner(
    {
      predicted: 'normal',
      probabilities: [{ name: 'normal', probability: 1 }],
      explainedClass: 'normal',
      modelName: 'm',
      modelVersion: '1',
      method: 'LRP (isnet)',
      usageNotice: 'NOT FOR DIAGNOSTIC USE',
      intendedUse: '',
    },
    600,
    divergingLut(),
  );
  const bright = banner.rgb.filter((v, i) => i % 3 === 0 && v > 200).length;
  t.true(bright > 100, 'white text was drawn with the bundled font');
});

test('model info for the outputs comes from the manifest and package.json', (t) => {
  t.deepEqual(outputModelInfo({ name: 'densenet201-cxr', version: '1.2.0', modelUid: '2.25.5' }), {
    name: 'densenet201-cxr',
    version: '1.2.0',
    modelUid: '2.25.5',
    manufacturer: 'cxr-gateway',
    softwareVersions: packageVersion(),
  });
  const options = { composite: 'isnet' as const, epsilon: 0.01, gamma: 0.25, alpha: 2, beta: 1 };
  t.is(describeLrpParameters(options), 'epsilon 0.01, alpha 2, beta 1');
  t.is(describeLrpParameters({ ...options, composite: 'epsilon-gamma-box' }), 'epsilon 0.01, gamma 0.25');
  // Read off the rules the composite applies: epsilon-plus-flat's fixed alpha-beta is named too, and z^B's
  // bounds when the site set them.
  t.is(describeLrpParameters({ ...options, composite: 'epsilon-plus-flat' }), 'epsilon 0.01, alpha 1, beta 0');
  t.is(describeLrpParameters({ ...options, composite: 'epsilon' }), 'epsilon 0.01');
  const inputBounds = { low: [-2, -2, -2], high: [2.5, 2.5, 2.5] };
  t.is(
    describeLrpParameters({ ...options, inputBounds }),
    'epsilon 0.01, z-box low [-2 -2 -2] high [2.5 2.5 2.5], alpha 2, beta 1',
  );
  t.is(
    describeLrpParameters({ ...options, composite: 'epsilon', inputBounds }),
    'epsilon 0.01',
    'no z-box rule, no bounds',
  );
});
