import type { RunningConfig } from '../../console-types.js';
import { html, type SafeHtml } from '../html.js';
import { time } from './layout.js';

export function configBody(c: RunningConfig): SafeHtml {
  return html`<table class="kv" id="config-source">
      <tr>
        <th>Read from</th>
        <td>${c.source}</td>
      </tr>
      <tr>
        <th>Last reload</th>
        <td>
          ${
            c.lastReload
              ? html`${time(c.lastReload.at)} (${c.lastReload.trigger}):
                ${c.lastReload.ok ? 'applied' : html`<span class="alert">refused: ${c.lastReload.error ?? ''}</span>`}`
              : 'none since start'
          }
        </td>
      </tr>
      <tr>
        <th>Sections a reload does not apply (restart needed)</th>
        <td id="restart-keys">${c.restartNeededKeys.join(', ') || '—'}</td>
      </tr>
      <tr>
        <th>Changed on disk, waiting for a restart</th>
        <td id="pending-restart" class="${c.pendingRestart.length > 0 ? 'alert' : ''}">
          ${c.pendingRestart.join(', ') || 'nothing'}
        </td>
      </tr>
    </table>
    <h2>Running configuration</h2>
    <pre id="config-json">${JSON.stringify(c.config, null, 2)}</pre>`;
}
