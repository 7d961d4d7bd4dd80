import test from 'ava';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseConfigText } from '../../src/config/load-config.js';
import { routeInstance, type RoutingSubject } from '../../src/routing/rule-matcher.js';
import { ruleSchema, type RoutingRule } from '../../src/routing/rule-schema.js';
import { writeImageFile } from '../helpers/dicom-factory.js';
import { runCli } from '../helpers/gateway-process.js';
import { writeFileSync } from 'node:fs';

const rules: RoutingRule[] = [
  {
    name: 'er-urgent',
    match: { callingAe: 'ER_DX', attributes: { Modality: 'DX' } },
    action: { model: 'demo', outputs: ['sc'], pacs: [], ris: [], priority: 'urgent' },
  },
  {
    name: 'laterals',
    match: { attributes: { ViewPosition: { oneOf: ['LL', 'RL', 'LATERAL'] } } },
    action: { ignore: true },
  },
  {
    name: 'chest',
    match: { attributes: { BodyPartExamined: { regex: '^(CHEST|THORAX)$' }, '0008,0060': { oneOf: ['CR', 'DX'] } } },
    action: { model: 'demo', outputs: ['sc', 'sr'], pacs: ['p'], ris: [], priority: 'normal' },
  },
].map((r) => ruleSchema.parse(r));

function subject(attributes: Record<string, string>, callingAe = 'DX1'): RoutingSubject {
  const byTag: Record<string, string> = {
    '00080060': attributes.Modality ?? '',
    '00180015': attributes.BodyPart ?? '',
    '00185101': attributes.View ?? '',
  };
  return {
    callingAe,
    calledAe: 'CXR_GATEWAY',
    sourceIp: '10.0.0.5',
    attribute: (tag) => (byTag[tag] ? [byTag[tag] as string] : undefined),
  };
}

test('the first matching rule wins, and every rule up to it says why it did or did not match', (t) => {
  const decision = routeInstance(rules, subject({ Modality: 'DX', BodyPart: 'CHEST', View: 'PA' }));
  t.is(decision.rule?.name, 'chest');
  t.deepEqual(
    decision.verdicts.map((v) => v.matched),
    [false, false, true],
  );
  t.deepEqual(decision.verdicts[0]?.reasons, ['no  calling AE DX1 equals ER_DX', 'yes Modality DX equals DX']);
  t.deepEqual(decision.verdicts[1]?.reasons, ['no  ViewPosition PA is one of LL, RL, LATERAL']);
});

test('calling AE conditions route an ER modality to the urgent rule', (t) => {
  t.is(
    routeInstance(rules, subject({ Modality: 'DX', BodyPart: 'CHEST', View: 'AP' }, 'ER_DX')).rule?.name,
    'er-urgent',
  );
});

test('a lateral is ignored, a non-chest study matches nothing', (t) => {
  t.like(routeInstance(rules, subject({ Modality: 'DX', BodyPart: 'CHEST', View: 'LL' })).rule, {
    name: 'laterals',
    action: { ignore: true },
  });
  const hand = routeInstance(rules, subject({ Modality: 'DX', BodyPart: 'HAND', View: 'PA' }));
  t.is(hand.rule, undefined);
  t.regex(hand.verdicts[2]?.reasons[0] ?? '', /no  BodyPartExamined HAND matches \/\^\(CHEST\|THORAX\)\$\//);
});

test('exists checks presence; an absent attribute never equals anything', (t) => {
  const r = ruleSchema.parse({
    name: 'has-station',
    match: { attributes: { StationName: { exists: true } } },
    action: { ignore: true },
  });
  t.false(routeInstance([r], subject({ Modality: 'DX' })).verdicts[0]?.matched);
});

test('the config refuses a rule naming an unknown destination or model, naming the rule', (t) => {
  const yaml = `rules:\n  - name: r1\n    action: { model: demo, pacs: [nowhere] }\n  - name: r2\n    action: { model: resnet }\n`;
  const error = t.throws(() => parseConfigText(yaml, 'site.yaml'));
  t.regex(
    error.message,
    /rules\.0\.action\.pacs\.0: rule 'r1' names PACS destination 'nowhere', which is not in destinations\.pacs/,
  );
  t.regex(error.message, /rules\.1\.action\.model: rule 'r2' names model 'resnet', which is not in models/);
  t.throws(
    () =>
      parseConfigText(
        'rules:\n  - name: x\n    match: { attributes: { NotAKeyword: DX } }\n    action: { ignore: true }\n',
        's',
      ),
    {
      message: /rules\.0\.match\.attributes\.NotAKeyword: is not a DICOM keyword or tag/,
    },
  );
});

test('rules explain reads a real file and prints the matching rule and its reasons', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'rules-'));
  const lateral = await writeImageFile(dir, { viewPosition: 'LL' });
  const config = path.join(dir, 'site.yaml');
  writeFileSync(
    config,
    [
      'rules:',
      '  - name: ignore-laterals',
      '    match: { attributes: { ViewPosition: LL } }',
      '    action: { ignore: true }',
      '  - name: chest-radiographs',
      '    match: { attributes: { Modality: { oneOf: [CR, DX] } } }',
      '    action: { model: demo, pacs: [pacs-folder] }',
    ].join('\n'),
  );
  const result = await runCli(['rules', 'explain', lateral.path, '--config', config, '--calling-ae', 'DX1']);
  t.is(result.code, 0, result.stderr);
  t.regex(
    result.stdout,
    /rule 'ignore-laterals': MATCHES\n {4}yes ViewPosition LL equals LL\n {2}=> rule 'ignore-laterals': ignore/,
  );
  const json = await runCli(['rules', 'explain', lateral.path, '--config', config, '--json']);
  t.is((JSON.parse(json.stdout) as { rule: string }).rule, 'ignore-laterals');
});

test('rules explain also says when inference will skip an image the rule routes (eligibility), as the daemon does', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'rules-'));
  const lateral = await writeImageFile(dir, { viewPosition: 'LL' });
  const frontal = await writeImageFile(dir, { viewPosition: 'PA' });
  const config = path.join(dir, 'site.yaml');
  writeFileSync(
    config,
    [
      'rules:',
      '  - name: chest-radiographs',
      '    match: { attributes: { Modality: { oneOf: [CR, DX] } } }',
      '    action: { model: demo, pacs: [pacs-folder] }',
    ].join('\n'),
  );
  const text = await runCli(['rules', 'explain', lateral.path, '--config', config]);
  t.is(text.code, 0, text.stderr);
  t.regex(
    text.stdout,
    /=> rule 'chest-radiographs': model demo.*\n {2}=> but inference skips the image: ViewPosition is LL, not one of PA, AP \(inference\.eligibility\)/,
  );
  const explain = async (file: string) =>
    JSON.parse((await runCli(['rules', 'explain', file, '--config', config, '--json'])).stdout) as {
      eligibility: { eligible: boolean } | null;
    };
  t.like(await explain(lateral.path), { eligibility: { eligible: false } });
  t.like(await explain(frontal.path), { eligibility: { eligible: true } });
});
