import type { DeliveryAttempt, DeliveryListItem, JobStory, StudyStory } from '../../console-types.js';
import { html, type SafeHtml } from '../html.js';
import { actionForm, type Frame, time } from './layout.js';

/** Release and discard buttons of a parked delivery (the parked page and the study page share them). */
export function parkedActions(frame: Frame, d: DeliveryListItem): SafeHtml {
  if (d.state !== 'parked') return html``;
  return html`${actionForm(frame, {
    action: `/actions/deliveries/${d.id}/release`,
    label: 'Release',
    data: 'release',
    confirm: `Send delivery ${d.id} to ${d.destination} again now?`,
  })}
  ${actionForm(frame, {
    action: `/actions/deliveries/${d.id}/discard`,
    label: 'Discard',
    data: 'discard',
    danger: true,
    confirm: `Discard delivery ${d.id} to ${d.destination}? It will not be sent.`,
    fields: html`<input
      name="reason"
      data-test="discard-reason"
      placeholder="reason (required)"
      required
      maxlength="500"
    />`,
  })}`;
}

function history(items: DeliveryAttempt[]): SafeHtml {
  if (items.length === 0) return html`<span class="muted">no attempt yet</span>`;
  return html`<ol class="history">
    ${items.map(
      (a) =>
        html`<li data-outcome="${a.outcome}">
          ${time(a.at)} #${a.attempt} <b>${a.outcome}</b>${a.detail ? html`: ${a.detail}` : ''}
        </li>`,
    )}
  </ol>`;
}

function routing(job: JobStory): SafeHtml {
  const r = job.routing;
  if (r === null) return html`<p class="muted">Not routed yet.</p>`;
  if ('ignored' in r) return html`<p data-test="routing">Ignored: ${r.ignored}</p>`;
  return html`<table class="kv" data-test="routing">
    <tr>
      <th>Rule</th>
      <td>${r.rule}</td>
    </tr>
    <tr>
      <th>Model</th>
      <td>${r.model}</td>
    </tr>
    <tr>
      <th>Outputs</th>
      <td>${r.outputs.join(', ') || '—'}</td>
    </tr>
    <tr>
      <th>PACS</th>
      <td>${r.pacs.join(', ') || '—'}</td>
    </tr>
    <tr>
      <th>RIS</th>
      <td>${r.ris.join(', ') || '—'}</td>
    </tr>
    <tr>
      <th>Priority</th>
      <td>${r.priority}</td>
    </tr>
  </table>`;
}

function jobSection(frame: Frame, job: JobStory): SafeHtml {
  return html`<section class="job" data-job="${job.id}">
    <h2>Revision ${job.revision} — job #${job.id} <span class="state-${job.state}">${job.state}</span></h2>
    <p class="muted">Created ${time(job.createdAt)}${job.finishedAt ? html`, finished ${time(job.finishedAt)}` : ''}</p>
    ${job.lastError ? html`<p class="flash error">${job.lastError}</p>` : ''}
    <div class="job-grid">
      <div>
        <h3>Images</h3>
        ${job.images.map(
          (image) =>
            html`<div class="image" data-sop="${image.sopInstanceUid}">
              <p>
                <span class="uid">${image.sopInstanceUid}</span> —
                <b>${image.state}</b>${image.reason ? html`: ${image.reason}` : ''}
              </p>
              <div class="image-body">
                ${
                  image.overlayAvailable
                    ? html`<img
                        class="overlay"
                        data-test="overlay"
                        alt="heatmap overlay of ${image.sopInstanceUid}"
                        src="/api/v1/jobs/${job.id}/images/${encodeURIComponent(image.sopInstanceUid)}/overlay.png"
                      />`
                    : ''
                }
                <div>
                  ${
                    image.classification
                      ? html`<table class="probabilities" data-test="probabilities">
                            ${image.classification.classes.map((c, i) => {
                              const p = image.classification?.probabilities[i] ?? 0;
                              return html`<tr class="${c === image.classification?.predicted ? 'predicted' : ''}">
                                <th>${c}</th>
                                <td><meter min="0" max="1" value="${p}"></meter></td>
                                <td>${(p * 100).toFixed(1)} %</td>
                              </tr>`;
                            })}
                          </table>
                          <p>
                            Predicted:
                            <b data-test="predicted">${image.classification.predicted}</b
                            >${image.explanation ? html` · heatmap for ${image.explanation.targetClass} (${image.explanation.composite})` : ''}
                          </p>`
                      : ''
                  }
                </div>
              </div>
              ${image.outputs.length > 0 ? html`<p class="muted">Outputs: ${image.outputs.map((o) => html`${o.kind.toUpperCase()} <span class="uid">${o.sopInstanceUid}</span> `)}</p>` : ''}
            </div>`,
        )}
      </div>
      <div>
        <h3>Routing decision</h3>
        ${routing(job)}
      </div>
    </div>
    <h3>Deliveries</h3>
    <table class="deliveries">
      <thead>
        <tr>
          <th>#</th>
          <th>Kind</th>
          <th>Destination</th>
          <th>State</th>
          <th>Attempts</th>
          <th>History</th>
          <th></th>
        </tr>
      </thead>
      <tbody>
        ${job.deliveries.map(
          (d) =>
            html`<tr data-delivery="${d.id}" data-state="${d.state}">
              <td>${d.id}</td>
              <td>${d.kind}</td>
              <td>${d.destination}</td>
              <td class="state-${d.state}">${d.state}</td>
              <td>${d.attempts}</td>
              <td>${history(d.history)}${d.lastError ? html`<small>${d.lastError}</small>` : ''}</td>
              <td>${parkedActions(frame, d)}</td>
            </tr>`,
        )}
      </tbody>
    </table>
    ${job.hl7.map(
      (m) =>
        html`<h3>HL7 to ${m.destination} (control id ${m.controlId})</h3>
          <pre class="hl7" data-test="hl7">${m.text.split('\r').join('\n')}</pre>`,
    )}
  </section>`;
}

export function studyBody(frame: Frame, story: StudyStory): SafeHtml {
  const s = story.study;
  return html`<table class="kv" id="study">
      <tr>
        <th>Study Instance UID</th>
        <td class="uid">${s.studyInstanceUid}</td>
      </tr>
      <tr>
        <th>Accession</th>
        <td>${s.accessionNumber ?? '—'}</td>
      </tr>
      <tr>
        <th>Calling AE</th>
        <td>${s.callingAe}</td>
      </tr>
      <tr>
        <th>Modality / date</th>
        <td>${s.modality ?? '—'} / ${s.studyDate ?? '—'}</td>
      </tr>
      <tr>
        <th>State</th>
        <td>${s.state} (revision ${s.revision}, ${s.instanceCount} images)</td>
      </tr>
      <tr>
        <th>Received</th>
        <td>${time(s.firstReceivedAt)} – ${time(s.lastReceivedAt)}</td>
      </tr>
    </table>
    <p>
      ${actionForm(frame, {
        action: `/actions/studies/${encodeURIComponent(s.studyInstanceUid)}/reprocess`,
        label: 'Reprocess as a new revision',
        data: 'reprocess',
        confirm: 'Process this study again with the running rules and models?',
      })}
    </p>
    ${story.jobs.length === 0 ? html`<p class="muted">No job yet.</p>` : story.jobs.map((job) => jobSection(frame, job))}
    <h2>Received images</h2>
    <table id="images">
      <thead>
        <tr>
          <th>SOP Instance UID</th>
          <th>Modality</th>
          <th>View</th>
          <th>From</th>
          <th>Received</th>
        </tr>
      </thead>
      <tbody>
        ${story.images.map(
          (i) =>
            html`<tr>
              <td class="uid">${i.sopInstanceUid}</td>
              <td>${i.modality ?? '—'}</td>
              <td>${i.viewPosition ?? '—'}</td>
              <td>${i.callingAe} → ${i.calledAe} (${i.sourceIp})</td>
              <td>${time(i.receivedAt)}</td>
            </tr>`,
        )}
      </tbody>
    </table> `;
}
