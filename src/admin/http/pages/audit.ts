import type { AuditEntry, Page } from '../../console-types.js';
import { html, type SafeHtml } from '../html.js';
import { pager, time } from './layout.js';
import type { ListQuery } from './studies.js';

function json(value: unknown): SafeHtml {
  if (value === null || value === undefined) return html``;
  return html`<pre>${JSON.stringify(value, null, 2)}</pre>`;
}

export function auditBody(query: ListQuery, page: Page<AuditEntry>): SafeHtml {
  return html`<form method="get" action="/audit" class="filters" id="audit-filter">
      <label>Category <input name="category" id="filter-category" value="${query.category ?? ''}" /></label>
      <label
        >Action <input name="action" id="filter-action" value="${query.action ?? ''}" placeholder="delivery.release"
      /></label>
      <label>User <input name="user" id="filter-user" value="${query.user ?? ''}" /></label>
      <label>Since <input name="since" id="filter-since" value="${query.since ?? ''}" /></label>
      <label>Until <input name="until" id="filter-until" value="${query.until ?? ''}" /></label>
      <button type="submit">Filter</button>
    </form>
    <table id="audit">
      <thead>
        <tr>
          <th>When</th>
          <th>Category</th>
          <th>Action</th>
          <th>User</th>
          <th>From</th>
          <th>Target</th>
          <th>Outcome</th>
          <th>Detail</th>
        </tr>
      </thead>
      <tbody>
        ${page.items.map(
          (e) =>
            html`<tr data-audit="${e.id}" data-action="${e.action}">
              <td>${time(e.at)}</td>
              <td>${e.category}</td>
              <td>${e.action}</td>
              <td>${e.user ?? '—'}${e.role ? html` (${e.role})` : ''}</td>
              <td>${e.address ?? '—'}</td>
              <td>${e.target ?? '—'}</td>
              <td class="outcome-${e.outcome}">${e.outcome}</td>
              <td>
                ${e.detail ?? ''}${
                  (e.before !== null && e.before !== undefined) || (e.after !== null && e.after !== undefined)
                    ? html`<details>
                        <summary>before / after</summary>
                        ${json(e.before)}${json(e.after)}
                      </details>`
                    : ''
                }
              </td>
            </tr>`,
        )}
      </tbody>
    </table>
    ${page.items.length === 0 ? html`<p id="empty">No entry matches.</p>` : ''} ${pager('/audit', query, page)}`;
}
