// The server-rendered pages: each renders for a viewer, values are escaped, and the forms behind the buttons work
// without script (POST with the CSRF token, 303 back with a flash message), refusing what the API refuses.

import test from 'ava';
import type { Client } from './console-harness.js';
import { startConsole } from './console-harness.js';

/** The CSRF token a page embeds in its forms. */
function tokenOf(page: string): string {
  const token = /name="_csrf" value="([^"]+)"/.exec(page)?.[1];
  if (!token) throw new Error('no CSRF token on the page');
  return token;
}

/** The flash message a form's 303 leads to. */
function flashOf(response: Response): string {
  return new URL(response.headers.get('location') ?? '', 'http://x').searchParams.get('flash') ?? '';
}

/** Markup with its whitespace runs made one space (prettier lays the templates out). */
function squash(text: string): string {
  return text.replace(/\s+/g, ' ').replace(/> </g, '><');
}

async function page(client: Client, url: string): Promise<string> {
  const response = await client.get(url);
  if (response.status !== 200) throw new Error(`${url}: ${response.status} ${await response.text()}`);
  return response.text();
}

test('every page renders for a viewer, with the navigation, the user and role, and logout', async (t) => {
  const c = await startConsole(t);
  const viewer = await c.login('victor', 'viewer pass');
  const pages: Array<[string, RegExp]> = [
    ['/', /id="parked-count"[^>]*>1</],
    ['/studies', /data-study="1\.2\.3\.2"/],
    ['/studies/1.2.3.2', /class="overlay"[^>]*src="\/api\/v1\/jobs\/\d+\/images\/1\.2\.3\.2\.1\/overlay\.png"/],
    ['/parked', /data-action="release"/],
    ['/destinations', /data-action="echo"/],
    ['/rules', /id="rules-text"[^>]*>- name: chest/],
    ['/audit', /data-action="user\.login"/],
    ['/config', /id="restart-keys">dicom, storage, admin</],
  ];
  for (const [url, expected] of pages) {
    const text = await page(viewer, url);
    t.regex(text, expected, url);
    t.regex(text, /id="whoami" data-role="viewer">victor \(viewer\)/, url);
    t.regex(text, /<form method="post" action="\/logout"/, url);
    t.notRegex(text, /<script>|style="/, `${url}: no inline script or style (CSP)`);
  }
  t.regex(await page(viewer, '/parked'), /id="viewer-note"/);
  t.notRegex(await page(await c.login('alice', 'correct horse'), '/parked'), /id="viewer-note"/);
  const story = await page(viewer, '/studies/1.2.3.2');
  t.regex(story, /<meter min="0" max="1" value="0\.7">/);
  t.regex(story, /<pre class="hl7" data-test="hl7">MSH\|\^~\\&amp;\|CXR\|GW\nOBX/);
  t.regex(story, /PEER_REFUSED: the RIS answered AR/);
  t.regex(await page(viewer, '/studies?accession=ACC1'), /data-test="range">1–1 of 1</);
});

test('a value with markup from a DICOM header shows as text, never as markup', async (t) => {
  const c = await startConsole(t);
  c.backend.addStudy({ uid: '1.2.3.9', accession: '<script>alert(1)</script>', callingAe: '"><img src=x>' });
  const viewer = await c.login('victor', 'viewer pass');
  for (const url of ['/studies', '/studies/1.2.3.9']) {
    const text = await page(viewer, url);
    t.notRegex(text, /<script>alert|<img src=x>/, url);
    t.regex(text, /&lt;script&gt;alert\(1\)&lt;\/script&gt;/, url);
  }
  // A flash message from the query string is text too.
  t.regex(await page(viewer, '/?flash=%3Cb%3Ehi%3C%2Fb%3E&flashKind=ok'), /id="flash"[^>]*>&lt;b&gt;hi&lt;\/b&gt;</);
});

test('release from the parked page: 303 back with a flash, the delivery is pending; again: the refusal as the flash', async (t) => {
  const c = await startConsole(t);
  const admin = await c.login('alice', 'correct horse');
  const parked = await page(admin, '/parked');
  const id = /data-delivery="(\d+)"/.exec(parked)?.[1];
  const form = { _csrf: tokenOf(parked), back: '/parked' };
  const response = await admin.request('POST', `/actions/deliveries/${id}/release`, { form });
  t.is(response.status, 303);
  const location = response.headers.get('location') ?? '';
  t.regex(location, /^\/parked\?flash=Released\+delivery/);
  t.is(c.backend.deliveriesById.get(Number(id))?.state, 'pending');
  t.regex(await page(admin, location), /id="flash" class="flash ok"[^>]*>Released delivery \d+/);
  t.regex(await page(admin, '/parked'), /Nothing is parked/);

  const again = await admin.request('POST', `/actions/deliveries/${id}/release`, { form });
  t.regex(again.headers.get('location') ?? '', /flashKind=error/);
  t.regex(flashOf(again), /is pending, not parked/);
  // back= cannot lead off the console.
  const away = await admin.request('POST', `/actions/deliveries/${id}/release`, {
    form: { ...form, back: 'https://evil.example/' },
  });
  t.regex(away.headers.get('location') ?? '', /^\/\?flash=/);
});

test('discard from the page needs a reason; release-all and echo and reprocess come back with what happened', async (t) => {
  const c = await startConsole(t);
  const admin = await c.login('alice', 'correct horse');
  const parked = await page(admin, '/parked');
  t.regex(squash(parked), /data-action="release-destination"[^>]*> ?Release all 1 for ris-main/);
  const id = /data-delivery="(\d+)"/.exec(parked)?.[1];
  const csrf = tokenOf(parked);
  const noReason = await admin.request('POST', `/actions/deliveries/${id}/discard`, {
    form: { _csrf: csrf, back: '/parked', reason: ' ' },
  });
  t.regex(noReason.headers.get('location') ?? '', /flashKind=error/);
  t.is(flashOf(noReason), 'Give a reason to discard a delivery.');
  t.is(c.backend.deliveriesById.get(Number(id))?.state, 'parked');
  const all = await admin.request('POST', '/actions/destinations/ris-main/release', {
    form: { _csrf: csrf, back: '/parked' },
  });
  t.regex(
    new URL(all.headers.get('location') ?? '', c.base).searchParams.get('flash') ?? '',
    /Released 1 parked delivery to ris-main/,
  );
  const echo = await admin.request('POST', '/actions/destinations/pacs-main/echo', {
    form: { _csrf: csrf, back: '/destinations' },
  });
  t.regex(
    new URL(echo.headers.get('location') ?? '', c.base).searchParams.get('flash') ?? '',
    /Echo to pacs-main answered/,
  );
  const reprocess = await admin.request('POST', '/actions/studies/1.2.3.1/reprocess', {
    form: { _csrf: csrf, back: '/studies/1.2.3.1' },
  });
  t.regex(new URL(reprocess.headers.get('location') ?? '', c.base).searchParams.get('flash') ?? '', /revision 2/);
});

test('a viewer pressing a button gets a page saying so; a form without its CSRF token is refused; nothing changes', async (t) => {
  const c = await startConsole(t);
  const viewer = await c.login('victor', 'viewer pass');
  const parked = await page(viewer, '/parked');
  const id = /data-delivery="(\d+)"/.exec(parked)?.[1];
  const refused = await viewer.request('POST', `/actions/deliveries/${id}/release`, {
    form: { _csrf: tokenOf(parked), back: '/parked' },
  });
  t.is(refused.status, 403);
  t.regex(await refused.text(), /victor has the viewer role; this action needs an admin\. Nothing was changed\./);
  const admin = await c.login('alice', 'correct horse');
  const noToken = await admin.request('POST', `/actions/deliveries/${id}/release`, { form: { back: '/parked' } });
  t.is(noToken.status, 403);
  t.regex(await noToken.text(), /no valid CSRF token/);
  t.deepEqual(c.backend.actions, []);
});

test('rules page: validate shows the issues, dry run shows what happened beside what would, apply writes and keeps a backup', async (t) => {
  const c = await startConsole(t);
  const admin = await c.login('alice', 'correct horse');
  const csrf = tokenOf(await page(admin, '/rules'));
  const bad = 'rules:\n  - name: chest\n    action: { model: demo, pacs: [nowhere] }\n';
  const validated = await admin.request('POST', '/rules/validate', { form: { _csrf: csrf, rules: bad, last: '50' } });
  t.is(validated.status, 200);
  const v = await validated.text();
  t.regex(v, /id="rules-issues"[\s\S]*<code>rules\.0\.action\.pacs\.0<\/code>: names destination &#39;nowhere&#39;/);
  t.regex(v, /id="rules-text"[^>]*>rules:\n {2}- name: chest/, 'the text is kept');

  const yamlError = await admin.request('POST', '/rules/validate', {
    form: { _csrf: csrf, rules: 'rules: [', last: '50' },
  });
  t.is(yamlError.status, 422);
  t.regex(await yamlError.text(), /id="rules-error"[^>]*>The text is not YAML/);

  const dry = await admin.request('POST', '/rules/dry-run', {
    form: { _csrf: csrf, rules: '- name: ignore-all\n  action: { ignore: true }\n', last: '10' },
  });
  t.is(dry.status, 200);
  const d = await dry.text();
  t.regex(d, /Dry run: 2 of 2 studies would change/);
  t.regex(
    squash(d),
    /<td><b>chest<\/b>: demo → sc; PACS pacs-main; RIS ris-main; normal<\/td><td>ignored \(ignore-all\)<\/td>/,
  );

  const refused = await admin.request('POST', '/rules/apply', { form: { _csrf: csrf, rules: bad } });
  t.is(refused.status, 422);
  t.regex(await refused.text(), /The rule set is not valid/);
  t.is((c.backend.rules()[0] as { name: string }).name, 'chest');

  const applied = await admin.request('POST', '/rules/apply', {
    form: { _csrf: csrf, rules: '- name: ignore-all\n  action: { ignore: true }\n' },
  });
  t.is(applied.status, 303);
  t.regex(
    decodeURIComponent(applied.headers.get('location') ?? '').replace(/\+/g, ' '),
    /Applied 1 rule\(s\); the previous configuration is kept as \/etc\/cxr-gateway\/config\.yaml\..*\.bak/,
  );
  t.deepEqual(c.backend.rules(), [{ name: 'ignore-all', action: { ignore: true } }]);

  const viewer = await c.login('victor', 'viewer pass');
  const vcsrf = tokenOf(await page(viewer, '/rules'));
  t.is(
    (await viewer.request('POST', '/rules/dry-run', { form: { _csrf: vcsrf, rules: '[]' } })).status,
    200,
    'a viewer may dry-run',
  );
  t.is(
    (await viewer.request('POST', '/rules/apply', { form: { _csrf: vcsrf, rules: '[]' } })).status,
    403,
    'not apply',
  );
});

test('an unknown study page is a 404 page with the reason; assets are served without a session, nothing outside them', async (t) => {
  const c = await startConsole(t);
  const viewer = await c.login('victor', 'viewer pass');
  const missing = await viewer.get('/studies/9.9.9');
  t.is(missing.status, 404);
  t.regex(await missing.text(), /No study 9\.9\.9 is in the job store/);
  const anon = c.client();
  const assets: Array<[string, string]> = [
    ['console.css', 'text/css; charset=utf-8'],
    ['console.js', 'text/javascript; charset=utf-8'],
    ['logo.svg', 'image/svg+xml'],
  ];
  for (const [name, type] of assets) {
    const response = await anon.get(`/assets/console/${name}`);
    t.is(response.status, 200, name);
    t.is(response.headers.get('content-type'), type, name);
  }
  t.is((await anon.get('/assets/console/..%2F..%2Fpackage.json')).status, 404);
  t.is((await anon.get('/assets/console/missing.css')).status, 404);
});
