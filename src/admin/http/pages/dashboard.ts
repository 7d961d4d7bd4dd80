import type { ClusterView } from '../../cluster-view.js';
import type { ConsoleHealth, Dashboard } from '../../console-types.js';
import { html, type SafeHtml } from '../html.js';
import { bytes, time } from './layout.js';

export function dashboardBody(d: Dashboard, health: ConsoleHealth): SafeHtml {
  const problems = [...new Set([...d.problems, ...health.problems])];
  return html`<section class="cards">
      <div class="card" id="card-status">
        <h2>Status</h2>
        <p class="big status-${d.status}" id="status">${d.status}</p>
        ${
          problems.length > 0
            ? html`<ul id="problems">
                ${problems.map((p) => html`<li>${p}</li>`)}
              </ul>`
            : html`<p>No problems.</p>`
        }
      </div>
      <div class="card" id="card-throughput">
        <h2>Throughput</h2>
        <table class="kv">
          <tr>
            <th>Studies received, last hour</th>
            <td data-test="received-hour">${d.throughput.receivedLastHour}</td>
          </tr>
          <tr>
            <th>Studies received, last 24 h</th>
            <td data-test="received-day">${d.throughput.receivedLast24h}</td>
          </tr>
          <tr>
            <th>Jobs finished, last hour</th>
            <td data-test="finished-hour">${d.throughput.finishedLastHour}</td>
          </tr>
          <tr>
            <th>Jobs finished, last 24 h</th>
            <td data-test="finished-day">${d.throughput.finishedLast24h}</td>
          </tr>
        </table>
      </div>
      <div class="card" id="card-queue">
        <h2>Queue</h2>
        <table class="kv">
          <tr>
            <th>Jobs waiting or running</th>
            <td data-test="queue-jobs">${d.queue.jobs}</td>
          </tr>
          <tr>
            <th>Deliveries pending</th>
            <td data-test="queue-deliveries">${d.queue.deliveries}</td>
          </tr>
          <tr>
            <th>Deliveries parked</th>
            <td><a href="/parked" id="parked-count" class="${d.parked > 0 ? 'alert' : ''}">${d.parked}</a></td>
          </tr>
        </table>
      </div>
      <div class="card" id="card-disk">
        <h2>Disk</h2>
        <table class="kv">
          <tr>
            <th>Free</th>
            <td data-test="disk-free">${bytes(d.disk.freeBytes)}</td>
          </tr>
          <tr>
            <th>Refuses C-STOREs below</th>
            <td>${bytes(d.disk.minFreeBytes)}</td>
          </tr>
        </table>
        <meter
          min="0"
          max="${Math.max(d.disk.freeBytes, d.disk.minFreeBytes * 4)}"
          low="${d.disk.minFreeBytes * 2}"
          optimum="${d.disk.minFreeBytes * 4}"
          value="${d.disk.freeBytes}"
        ></meter>
      </div>
    </section>
    <h2>Models</h2>
    <table id="models">
      <thead>
        <tr>
          <th>Model</th>
          <th>Backend</th>
          <th>Loaded</th>
          <th>Workers</th>
        </tr>
      </thead>
      <tbody>
        ${d.models.map(
          (m) =>
            html`<tr data-model="${m.name}">
              <td>${m.name}</td>
              <td>${m.backend ?? '—'}</td>
              <td>${m.loaded ? 'yes' : html`<span class="alert">no</span>`}</td>
              <td>${m.workers}</td>
            </tr>`,
        )}
      </tbody>
    </table>
    <h2>Destinations</h2>
    <table id="destinations-summary">
      <thead>
        <tr>
          <th>Destination</th>
          <th>Kind</th>
          <th>Last success</th>
          <th>Last failure</th>
          <th>Pending</th>
          <th>Parked</th>
        </tr>
      </thead>
      <tbody>
        ${health.destinations.map(
          (x) =>
            html`<tr>
              <td>${x.name}</td>
              <td>${x.kind}</td>
              <td>${time(x.lastSuccessAt)}</td>
              <td>${time(x.lastFailureAt)}${x.lastFailure ? html`<br /><small>${x.lastFailure}</small>` : ''}</td>
              <td>${x.pending}</td>
              <td>
                ${x.parked > 0 ? html`<a href="/parked?destination=${encodeURIComponent(x.name)}" class="alert">${x.parked}</a>` : '0'}
              </td>
            </tr>`,
        )}
      </tbody>
    </table>
    ${nodesTable(health)}
    <p class="muted">cxr-gateway ${d.version}, running since ${time(d.startedAt)}.</p>`;
}

/** The cluster's nodes (the cluster part of /healthz), shown when there is more than one: one node is no news. */
function nodesTable(health: ConsoleHealth): SafeHtml | '' {
  const cluster = health.checks['cluster'] as Partial<ClusterView> | undefined;
  const nodes = cluster?.nodes ?? [];
  if (nodes.length < 2) return '';
  return html`<h2>Nodes</h2>
    <table id="nodes">
      <thead>
        <tr>
          <th>Node</th>
          <th>Roles</th>
          <th>State</th>
          <th>Last heartbeat</th>
          <th>Jobs held</th>
          <th>Deliveries held</th>
        </tr>
      </thead>
      <tbody>
        ${nodes.map(
          (n) =>
            html`<tr data-node="${n.name}">
              <td>${n.name}${n.name === cluster?.node?.name ? ' (this node)' : ''}</td>
              <td>${n.roles.join(', ')}</td>
              <td>${n.alive ? (n.draining ? 'draining' : 'alive') : html`<span class="alert">down</span>`}</td>
              <td>${n.heartbeatAgeSeconds} s ago</td>
              <td>${n.leases.jobs}</td>
              <td>${n.leases.deliveries}</td>
            </tr>`,
        )}
      </tbody>
    </table>`;
}
