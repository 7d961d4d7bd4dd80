import type { Page, StudyListItem } from '../../console-types.js';
import { STUDY_STATES } from '../api-schemas.js';
import { html, type SafeHtml } from '../html.js';
import { pager, select, time } from './layout.js';

export type ListQuery = Record<string, string | undefined>;

export function studiesBody(query: ListQuery, page: Page<StudyListItem>): SafeHtml {
  return html`<form method="get" action="/studies" class="filters" id="studies-filter">
      <label>State ${select('state', STUDY_STATES, query.state)}</label>
      <label>Calling AE <input name="ae" id="filter-ae" value="${query.ae ?? ''}" /></label>
      <label>Accession <input name="accession" id="filter-accession" value="${query.accession ?? ''}" /></label>
      <label
        >Since <input name="since" id="filter-since" placeholder="2026-01-31" value="${query.since ?? ''}"
      /></label>
      <label
        >Until <input name="until" id="filter-until" placeholder="2026-02-01T12:00" value="${query.until ?? ''}"
      /></label>
      <button type="submit" id="filter-apply">Filter</button>
    </form>
    <table id="studies">
      <thead>
        <tr>
          <th>Received</th>
          <th>Study</th>
          <th>Accession</th>
          <th>AE</th>
          <th>Modality</th>
          <th>Images</th>
          <th>State</th>
          <th>Latest job</th>
          <th>Class</th>
        </tr>
      </thead>
      <tbody>
        ${page.items.map(
          (s) =>
            html`<tr data-study="${s.studyInstanceUid}">
              <td>${time(s.lastReceivedAt)}</td>
              <td>
                <a href="/studies/${encodeURIComponent(s.studyInstanceUid)}" class="uid">${s.studyInstanceUid}</a>
              </td>
              <td>${s.accessionNumber ?? '—'}</td>
              <td>${s.callingAe}</td>
              <td>${s.modality ?? '—'}</td>
              <td>${s.instanceCount}</td>
              <td>${s.state}</td>
              <td>
                ${s.latestJob ? html`#${s.latestJob.id} r${s.latestJob.revision} <span class="state-${s.latestJob.state}">${s.latestJob.state}</span> ${s.latestJob.rule ?? ''}` : '—'}
              </td>
              <td>${s.latestJob?.predicted ?? '—'}</td>
            </tr>`,
        )}
      </tbody>
    </table>
    ${page.items.length === 0 ? html`<p id="empty">No study matches.</p>` : ''} ${pager('/studies', query, page)}`;
}
