import type { DeliveryListItem, DestinationHealth, Page } from '../../console-types.js';
import { html, type SafeHtml } from '../html.js';
import { actionForm, type Frame, pager, time } from './layout.js';
import type { ListQuery } from './studies.js';
import { parkedActions } from './study.js';

export function parkedBody(
  frame: Frame,
  query: ListQuery,
  page: Page<DeliveryListItem>,
  destinations: DestinationHealth[],
): SafeHtml {
  const withParked = destinations.filter((d) => d.parked > 0);
  return html`<p>
      A delivery is parked when its destination refused it (e.g. the RIS answered AR) or failed for longer than the
      retry window. Release it once the destination is fixed, or discard it with a reason.
    </p>
    ${
      withParked.length > 0
        ? html`<div id="release-all">
            ${withParked.map((d) =>
              actionForm(frame, {
                action: `/actions/destinations/${encodeURIComponent(d.name)}/release`,
                label: `Release all ${d.parked} for ${d.name}`,
                data: 'release-destination',
                confirm: `Send every parked delivery to ${d.name} again now?`,
              }),
            )}
          </div>`
        : ''
    }
    <form method="get" action="/parked" class="filters">
      <label
        >Destination
        <select name="destination" id="filter-destination">
          <option value="">any</option>
          ${destinations.map((d) => html`<option ${d.name === query.destination ? html`selected` : ''}>${d.name}</option>`)}
        </select></label
      >
      <button type="submit">Filter</button>
    </form>
    <table id="parked">
      <thead>
        <tr>
          <th>#</th>
          <th>Study</th>
          <th>Kind</th>
          <th>Destination</th>
          <th>Attempts</th>
          <th>Last error</th>
          <th>Updated</th>
          <th>Actions</th>
        </tr>
      </thead>
      <tbody>
        ${page.items.map(
          (d) =>
            html`<tr data-delivery="${d.id}" data-destination="${d.destination}">
              <td>${d.id}</td>
              <td>
                <a href="/studies/${encodeURIComponent(d.studyInstanceUid)}">${d.accessionNumber ?? 'no accession'}</a>
                r${d.revision}
                <div class="uid">${d.studyInstanceUid}</div>
              </td>
              <td>${d.kind}</td>
              <td>${d.destination}</td>
              <td>${d.attempts}</td>
              <td>${d.lastError ?? '—'}</td>
              <td>${time(d.updatedAt)}</td>
              <td>${parkedActions(frame, d)}</td>
            </tr>`,
        )}
      </tbody>
    </table>
    ${page.items.length === 0 ? html`<p id="empty">Nothing is parked.</p>` : ''} ${pager('/parked', query, page)}`;
}
