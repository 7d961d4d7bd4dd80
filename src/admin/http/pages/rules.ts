import type { DryRun, RoutingOutcome, RulesValidation } from '../../console-types.js';
import { html, type SafeHtml } from '../html.js';
import { csrfField, type Frame, time } from './layout.js';

export interface RulesView {
  /** The YAML in the editor: the running rules, or what the admin submitted. */
  text: string;
  last: number;
  validation?: RulesValidation;
  /** A refusal that is not a list of issues (YAML syntax, apply refused). */
  error?: string;
  dryRun?: DryRun;
}

function outcome(o: RoutingOutcome | null): SafeHtml {
  if (o === null) return html`<span class="muted">not routed</span>`;
  if (o.ignored) return html`ignored${o.rule ? html` (${o.rule})` : ''}`;
  if (o.rule === null) return html`<span class="muted">no rule matched</span>`;
  return html`<b>${o.rule}</b>: ${o.model ?? '—'} → ${o.outputs.join('+') || '—'}; PACS ${o.pacs.join(', ') || '—'}; RIS
    ${o.ris.join(', ') || '—'}; ${o.priority ?? ''}`;
}

export function rulesBody(frame: Frame, view: RulesView): SafeHtml {
  const v = view.validation;
  return html`<form method="post" action="/rules/validate" id="rules-form" class="stack">
      ${csrfField(frame.csrf)}
      <label for="rules-text">Routing rules (YAML: a list of rules, or <code>rules:</code> and the list)</label>
      <textarea id="rules-text" name="rules" rows="18" spellcheck="false">${view.text}</textarea>
      <div class="buttons">
        <button type="submit" formaction="/rules/validate" id="rules-validate" data-action="validate">Validate</button>
        <label
          >against the last
          <input type="number" name="last" id="rules-last" min="1" max="1000" value="${view.last}" /> studies</label
        >
        <button type="submit" formaction="/rules/dry-run" id="rules-dry-run" data-action="dry-run">Dry run</button>
        <button
          type="submit"
          formaction="/rules/apply"
          id="rules-apply"
          data-action="apply"
          class="danger"
          data-confirm-submit="Write these rules to the config file and reload?"
        >
          Apply
        </button>
      </div>
    </form>
    ${view.error ? html`<p id="rules-error" class="flash error">${view.error}</p>` : ''}
    ${
      v
        ? v.ok
          ? html`<p id="rules-valid" class="flash ok">Valid: ${v.rules.length} rule(s).</p>`
          : html`<div id="rules-issues" class="flash error">
              <p>The rule set is not valid:</p>
              <ul>
                ${v.issues.map((i) => html`<li><code>${i.path}</code>: ${i.message}</li>`)}
              </ul>
            </div>`
        : ''
    }
    ${
      view.dryRun
        ? html`<h2>Dry run: ${view.dryRun.changed} of ${view.dryRun.studies} studies would change</h2>
            <table id="dry-run">
              <thead>
                <tr>
                  <th>Study</th>
                  <th>Accession</th>
                  <th>AE</th>
                  <th>Received</th>
                  <th>What happened</th>
                  <th>What would happen</th>
                  <th>Changes</th>
                </tr>
              </thead>
              <tbody>
                ${view.dryRun.rows.map(
                  (r) =>
                    html`<tr data-study="${r.studyInstanceUid}" class="${r.changes.length > 0 ? 'changed' : ''}">
                      <td>
                        <a class="uid" href="/studies/${encodeURIComponent(r.studyInstanceUid)}"
                          >${r.studyInstanceUid}</a
                        >
                      </td>
                      <td>${r.accessionNumber ?? '—'}</td>
                      <td>${r.callingAe}</td>
                      <td>${time(r.receivedAt)}</td>
                      <td>${outcome(r.happened)}</td>
                      <td>${outcome(r.would)}</td>
                      <td data-test="changes">${r.changes.join(', ') || 'unchanged'}</td>
                    </tr>`,
                )}
              </tbody>
            </table>`
        : ''
    }`;
}
