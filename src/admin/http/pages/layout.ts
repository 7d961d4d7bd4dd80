import type { Page } from '../../console-types.js';
import { html, type SafeHtml } from '../html.js';

export interface Frame {
  user: string;
  role: string;
  /** The CSRF token every form on the page carries. */
  csrf: string;
  /** The page's own path with its query: forms come back here. */
  here: string;
  flash?: { kind: 'ok' | 'error'; text: string };
}

const NAV: Array<[string, string]> = [
  ['/', 'Dashboard'],
  ['/studies', 'Studies'],
  ['/parked', 'Parked'],
  ['/destinations', 'Destinations'],
  ['/rules', 'Rules'],
  ['/audit', 'Audit'],
  ['/config', 'Config'],
];

function head(title: string): SafeHtml {
  return html`<!doctype html>
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <title>${title} · cxr-gateway</title>
        <link rel="stylesheet" href="/assets/console/console.css" />
        <link rel="icon" href="/assets/console/logo.svg" type="image/svg+xml" />
        <script src="/assets/console/console.js" defer></script>
      </head>
    </html>`;
}

/** A whole page: navigation (with the user, the role and logout), the flash message, then `body`. */
export function layout(frame: Frame, title: string, body: SafeHtml): SafeHtml {
  const path = frame.here.split('?')[0] ?? '/';
  const current = (href: string) => (href === '/' ? path === '/' : path.startsWith(href));
  return html`${head(title)}
<body>
<nav class="top">
  <a class="brand" href="/"><img src="/assets/console/logo.svg" alt="" width="20" height="20"> cxr-gateway</a>
  ${NAV.map(
    ([href, label]) =>
      html`<a href="${href}" data-nav="${label.toLowerCase()}" class="${current(href) ? 'current' : ''}">${label}</a>`,
  )}
  <span class="spacer"></span>
  <span id="whoami" data-role="${frame.role}">${frame.user} (${frame.role})</span>
  <form method="post" action="/logout" class="inline">
    ${csrfField(frame.csrf)}
    <button type="submit" id="logout">Log out</button>
  </form>
</nav>
<main>
${frame.role === 'viewer' ? html`<p id="viewer-note" class="muted">You have the viewer role: you can look at everything and try rule sets, but actions (release, discard, reprocess, echo, apply) need an admin.</p>` : ''}
      ${frame.flash ? html`<p id="flash" class="flash ${frame.flash.kind}" role="status">${frame.flash.text}</p>` : ''}
<h1>${title}</h1>
${body}
</main>
</body>
</html>
`;
}

/** A page without navigation: errors, refusals, not found. */
export function messagePage(title: string, message: string): string {
  return html`${head(title)}
<body>
<main class="narrow">
<h1>${title}</h1>
<p id="message">${message}</p>
<p><a href="/">Back to the console</a></p>
</main>
</body>
</html>
`.text;
}

export function csrfField(token: string): SafeHtml {
  return html`<input type="hidden" name="_csrf" value="${token}" />`;
}

/** A form that POSTs one action and comes back to `back`; `confirm` asks first (console.js). */
export function actionForm(
  frame: Frame,
  options: { action: string; label: string; data: string; confirm?: string; fields?: SafeHtml; danger?: boolean },
): SafeHtml {
  return html`<form method="post" action="${options.action}" class="inline" data-confirm="${options.confirm ?? ''}">
    ${csrfField(frame.csrf)}<input type="hidden" name="back" value="${frame.here}" />${options.fields ?? ''}
    <button type="submit" data-action="${options.data}" class="${options.danger ? 'danger' : ''}">
      ${options.label}
    </button>
  </form>`;
}

export function time(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return '—';
  return new Date(ms)
    .toISOString()
    .replace('T', ' ')
    .replace(/\.\d{3}Z$/, 'Z');
}

export function bytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(unit === 0 ? 0 : 1)} ${units[unit]}`;
}

/** Previous/next links that keep the page's filters. */
export function pager(path: string, query: Record<string, string | undefined>, page: Page<unknown>): SafeHtml {
  const link = (offset: number) => {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== '' && k !== 'offset') params.set(k, v);
    params.set('offset', String(offset));
    return `${path}?${params.toString()}`;
  };
  const first = page.total === 0 ? 0 : page.offset + 1;
  const last = Math.min(page.offset + page.items.length, page.total);
  return html`<p class="pager" id="pager">
    ${page.offset > 0 ? html`<a href="${link(Math.max(0, page.offset - page.limit))}" data-test="prev">← previous</a>` : ''}
    <span data-test="range">${first}–${last} of ${page.total}</span>
    ${last < page.total ? html`<a href="${link(page.offset + page.limit)}" data-test="next">next →</a>` : ''}
  </p>`;
}

/** A <select> of filter values with an empty "any" choice. */
export function select(name: string, values: readonly string[], chosen: string | undefined): SafeHtml {
  return html`<select name="${name}" id="filter-${name}">
    <option value="">any</option>
    ${values.map((v) => html`<option value="${v}" ${v === chosen ? html`selected` : ''}>${v}</option>`)}
  </select>`;
}
