// Login, sessions, logout, login limits, security headers, and the unauthenticated /healthz and /metrics.

import test from 'ava';
import { startConsole } from './console-harness.js';

test('login with the right password sets an HttpOnly SameSite=Strict session cookie and is audited', async (t) => {
  const c = await startConsole(t);
  const client = c.client();
  const response = await client.request('POST', '/login', { json: { user: 'alice', password: 'correct horse' } });
  t.is(response.status, 200);
  const body = (await response.json()) as { user: string; role: string; csrfToken: string };
  t.like(body, { user: 'alice', role: 'admin' });
  t.true(body.csrfToken.length > 10);
  const cookie = response.headers.getSetCookie().find((h) => h.startsWith('cxr_session='));
  t.truthy(cookie);
  t.regex(cookie ?? '', /HttpOnly/i);
  t.regex(cookie ?? '', /SameSite=Strict/i);
  t.regex(cookie ?? '', /Path=\//);
  t.notRegex(cookie ?? '', /Secure/i, 'plain http on loopback: no Secure flag');
  t.is((await client.get('/api/v1/session')).status, 200);
  t.like(c.backend.auditTrail.at(-1), {
    action: 'user.login',
    user: 'alice',
    role: 'admin',
    outcome: 'success',
    address: '127.0.0.1',
  });
  t.like(
    c.logs.find((l) => l.event === 'ADMIN-7101'),
    { user: 'alice', level: 'info' },
  );
});

test('the login form redirects to the page asked for; wrong password and unknown user get the same 401', async (t) => {
  const c = await startConsole(t);
  const client = c.client();
  const form = await client.request('POST', '/login', {
    form: { user: 'alice', password: 'correct horse', next: '/parked' },
  });
  t.is(form.status, 303);
  t.is(form.headers.get('location'), '/parked');
  // next must stay on the console: an absolute URL is replaced by the dashboard.
  const other = c.client();
  const away = await other.request('POST', '/login', {
    form: { user: 'alice', password: 'correct horse', next: '//evil.example/' },
  });
  t.is(away.headers.get('location'), '/');

  const wrong = await c.client().request('POST', '/login', { json: { user: 'alice', password: 'nope' } });
  const unknown = await c.client().request('POST', '/login', { json: { user: 'mallory', password: 'nope' } });
  t.is(wrong.status, 401);
  t.is(unknown.status, 401);
  const [w, u] = [
    (await wrong.json()) as { error: string; message: string },
    (await unknown.json()) as { error: string; message: string },
  ];
  t.deepEqual(w, u, 'no hint whether the user exists');
  t.is(w.error, 'LOGIN_FAILED');
  t.false(wrong.headers.getSetCookie().some((h) => h.startsWith('cxr_session=')));
  const failed = c.backend.auditTrail.filter((e) => e.action === 'user.login-failed');
  t.deepEqual(
    failed.map((e) => e.user),
    ['alice', 'mallory'],
  );
  t.false(JSON.stringify(c.backend.auditTrail).includes('nope'), 'no password in the audit trail');
  t.false(JSON.stringify(c.logs).includes('nope'), 'no password in the log');

  const empty = await c.client().request('POST', '/login', { form: { user: 'alice', password: '' } });
  t.is(empty.status, 400);
  const emptyPage = await empty.text();
  t.regex(emptyPage, /id="login-form"/);
  t.regex(emptyPage, /Enter a user name and a password\./);
  t.regex(
    await (await c.client().request('POST', '/login', { form: { user: '', password: '' } })).text(),
    /Enter a user name and a password\./,
  );
  const page = await c.client().request('POST', '/login', { form: { user: 'alice', password: 'nope' } });
  t.is(page.status, 401);
  t.regex(await page.text(), /Wrong user name or password/);
});

test('failed logins are limited per user name: 429 with Retry-After, even with the right password, until the window passes', async (t) => {
  // Behind a trusted proxy each attempt comes from another address, so only the per-user count can refuse.
  const c = await startConsole(t, { loginAttemptsPerMinute: 3, trustProxy: true });
  const from = (address: string) => ({ 'x-forwarded-for': address });
  for (let i = 0; i < 3; i++) {
    const response = await c
      .client()
      .request('POST', '/login', { json: { user: 'alice', password: `x${i}` }, headers: from(`10.0.0.${i}`) });
    t.is(response.status, 401);
  }
  const limited = await c
    .client()
    .request('POST', '/login', { json: { user: 'alice', password: 'correct horse' }, headers: from('10.0.0.9') });
  t.is(limited.status, 429);
  t.is(((await limited.json()) as { error: string }).error, 'LOGIN_RATE_LIMITED');
  const retry = Number(limited.headers.get('retry-after'));
  t.true(retry >= 1 && retry <= 60, `Retry-After ${retry}`);
  t.like(
    c.logs.find((l) => l.event === 'ADMIN-7103'),
    { user: 'alice' },
  );
  t.like(c.backend.auditTrail.at(-1), { action: 'user.login-failed', detail: 'refused: too many failed logins' });

  c.clock.now += 61_000;
  t.is(
    (await c.client().request('POST', '/login', { json: { user: 'alice', password: 'correct horse' } })).status,
    200,
  );
});

test('failed logins are limited per address too: many user names from one address', async (t) => {
  const c = await startConsole(t, { loginAttemptsPerMinute: 3 });
  for (const user of ['a1', 'a2', 'a3'])
    t.is((await c.client().request('POST', '/login', { json: { user, password: 'x' } })).status, 401);
  const limited = await c.client().request('POST', '/login', { json: { user: 'victor', password: 'viewer pass' } });
  t.is(limited.status, 429);
  t.truthy(limited.headers.get('retry-after'));
});

test('@fastify/rate-limit caps all login requests of an address (10 x loginAttemptsPerMinute), successful ones too', async (t) => {
  const c = await startConsole(t, { loginAttemptsPerMinute: 1 });
  for (let i = 0; i < 10; i++)
    t.is(
      (await c.client().request('POST', '/login', { json: { user: 'alice', password: 'correct horse' } })).status,
      200,
    );
  const flood = await c.client().request('POST', '/login', { json: { user: 'alice', password: 'correct horse' } });
  t.is(flood.status, 429);
  t.is(((await flood.json()) as { error: string }).error, 'LOGIN_RATE_LIMITED');
  t.truthy(flood.headers.get('retry-after'));
});

test('a session the backend has ended (idle expiry) is refused: API 401, pages redirect to /login', async (t) => {
  const c = await startConsole(t);
  const client = await c.login('victor', 'viewer pass');
  t.is((await client.get('/api/v1/studies')).status, 200);
  c.auth.now += c.auth.idleMs + 1;
  const api = await client.get('/api/v1/studies');
  t.is(api.status, 401);
  t.is(((await api.json()) as { error: string }).error, 'UNAUTHENTICATED');
  const page = await client.get('/parked');
  t.is(page.status, 303);
  t.is(page.headers.get('location'), '/login?next=%2Fparked');
});

test('logging in again ends the session the browser had and starts a new one', async (t) => {
  const c = await startConsole(t);
  const client = await c.login('victor', 'viewer pass');
  const first = client.cookies.get('cxr_session');
  const again = await client.request('POST', '/login', { json: { user: 'alice', password: 'correct horse' } });
  t.is(again.status, 200);
  t.not(client.cookies.get('cxr_session'), first);
  t.is(c.auth.sessions.size, 1, 'the old session ended');
  t.like(await (await client.get('/api/v1/session')).json(), { user: 'alice', role: 'admin' });
});

test('logout ends the session in the backend and needs the CSRF token', async (t) => {
  const c = await startConsole(t);
  const client = await c.login('victor', 'viewer pass');
  t.is(c.auth.sessions.size, 1);
  const refused = await client.request('POST', '/logout', { form: {} });
  t.is(refused.status, 403);
  t.is(c.auth.sessions.size, 1, 'still logged in');
  const out = await client.request('POST', '/logout', { form: { _csrf: await client.csrf() } });
  t.is(out.status, 303);
  t.is(out.headers.get('location'), '/login');
  t.is(c.auth.sessions.size, 0);
  t.is((await client.get('/api/v1/session')).status, 401);
  t.like(c.backend.auditTrail.at(-1), { action: 'user.logout', user: 'victor' });
});

test('without a session: /healthz and /metrics answer, the API is 401, pages go to /login, /login says how to add the first user', async (t) => {
  const c = await startConsole(t);
  const anon = c.client();
  const health = await anon.get('/healthz');
  t.is(health.status, 200);
  t.is(health.headers.get('content-type'), 'application/json');
  t.regex(await health.text(), /^\{\n {2}"status": "ok"/);
  const metrics = await anon.get('/metrics');
  t.is(metrics.status, 200);
  t.is(metrics.headers.get('content-type'), 'text/plain; version=0.0.4');
  t.is((await anon.request('POST', '/healthz')).status, 404, 'read-only');
  t.is((await anon.get('/api/v1/dashboard')).status, 401);
  const page = await anon.get('/');
  t.is(page.status, 303);
  t.is(page.headers.get('location'), '/login?next=%2F');
  const login = await (await anon.get('/login')).text();
  t.regex(login, /id="login-user"/);
  t.notRegex(login, /No console user exists yet/);
  c.auth.users.clear();
  t.regex(await (await anon.get('/login')).text(), /No console user exists yet[\s\S]*cxr-gateway admin add-user/);
});

test('every answer carries a strict same-origin CSP and the other helmet headers', async (t) => {
  const c = await startConsole(t);
  const client = await c.login('alice', 'correct horse');
  for (const url of ['/login', '/', '/api/v1/dashboard']) {
    const response = await client.get(url);
    const csp = response.headers.get('content-security-policy') ?? '';
    t.regex(csp, /default-src 'self'/, url);
    t.regex(csp, /script-src 'self'(;|$)/, url);
    t.regex(csp, /style-src 'self'(;|$)/, url);
    t.regex(csp, /frame-ancestors 'none'/, url);
    t.notRegex(csp, /unsafe-inline|https:/, url);
    t.is(response.headers.get('x-content-type-options'), 'nosniff', url);
  }
});

test('behind a trusted reverse proxy the forwarded address is audited and the cookie is Secure', async (t) => {
  const c = await startConsole(t, { trustProxy: true });
  const client = c.client();
  const response = await client.request('POST', '/login', {
    json: { user: 'alice', password: 'correct horse' },
    headers: { 'x-forwarded-for': '10.1.2.3', 'x-forwarded-proto': 'https' },
  });
  t.is(response.status, 200);
  t.regex(response.headers.getSetCookie().find((h) => h.startsWith('cxr_session=')) ?? '', /Secure/);
  t.like(c.backend.auditTrail.at(-1), { action: 'user.login', address: '10.1.2.3' });
});
