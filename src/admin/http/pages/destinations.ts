import type { DestinationHealth } from '../../console-types.js';
import { html, type SafeHtml } from '../html.js';
import { actionForm, type Frame, time } from './layout.js';

export function destinationsBody(frame: Frame, destinations: DestinationHealth[]): SafeHtml {
  return html`<table id="destinations">
      <thead>
        <tr>
          <th>Destination</th>
          <th>Kind</th>
          <th>Transport</th>
          <th>Last success</th>
          <th>Last failure</th>
          <th>Pending</th>
          <th>Parked</th>
          <th>Actions</th>
        </tr>
      </thead>
      <tbody>
        ${destinations.map(
          (d) =>
            html`<tr data-destination="${d.name}">
              <td>${d.name}</td>
              <td>${d.kind}</td>
              <td>${d.transport}</td>
              <td>${time(d.lastSuccessAt)}</td>
              <td>${time(d.lastFailureAt)}${d.lastFailure ? html`<br /><small>${d.lastFailure}</small>` : ''}</td>
              <td>${d.pending}</td>
              <td>
                ${d.parked > 0 ? html`<a class="alert" href="/parked?destination=${encodeURIComponent(d.name)}">${d.parked}</a>` : '0'}
              </td>
              <td>
                ${actionForm(frame, { action: `/actions/destinations/${encodeURIComponent(d.name)}/echo`, label: 'Echo', data: 'echo' })}
              </td>
            </tr>`,
        )}
      </tbody>
    </table>
    <p class="muted">
      Echo sends a C-ECHO to a DICOM peer, opens an MLLP connection to a RIS, or checks that a folder is writable.
    </p>`;
}
