import { html } from 'htm/preact';
import type { HealthAnswer, MetricsAnswer, OverviewAnswer } from '../../../api-types.js';
import { ErrorNote, StateBadge, time, useLive } from '../api.js';
import { Slots, Throughput } from '../charts.js';

export function HealthPanel({ health }: { health: HealthAnswer }) {
  return html`<section aria-labelledby="health-title" class="panel">
    <h2 id="health-title">Services</h2>
    <ul class="health">
      ${health.map(
        (service) => html`<li class=${service.up ? 'up' : 'down'}>
          <span class="dot" aria-hidden="true"></span>
          <strong>${service.name}</strong>
          <span class="muted">${service.address}</span>
          <span>${service.up ? `running${service.detail ? ` (${service.detail})` : ''}` : `not answering — ${service.detail}`}</span>
          ${service.up && service.lastDown ? html`<span class="was-down">was not answering at ${time(service.lastDown.time)}</span>` : null}
        </li>`,
      )}
    </ul>
  </section>`;
}

export function OverviewPage() {
  // Health on its own: it paints as soon as the probes answer, whatever the rest costs.
  const health = useLive<HealthAnswer>('/api/health', ['health']);
  const { data, error } = useLive<OverviewAnswer>('/api/overview');
  const metrics = useLive<MetricsAnswer>('/api/metrics', ['activity', 'topic']);
  return html`<div>
    <h1>Overview${data ? html` <span class="muted">· ${data.project}</span>` : ''}</h1>
    <${ErrorNote} error=${error} where="Reading the platform" />
    <${ErrorNote} error=${health.error} where="Checking the services" />
    ${health.data ? html`<${HealthPanel} health=${health.data} />` : null}
    <div class="grid">
      <section class="panel" aria-labelledby="throughput-title">
        <h2 id="throughput-title">Throughput</h2>
        ${metrics.data ? html`<${Throughput} minutes=${metrics.data.minutes} />` : null}
      </section>
      <section class="panel" aria-labelledby="slots-title">
        <h2 id="slots-title">Task slots in use</h2>
        ${metrics.data ? html`<${Slots} samples=${metrics.data.slots} />` : null}
      </section>
    </div>
    ${data?.products.map(
      (product) => html`<section class="panel" aria-labelledby=${`p-${product.product}`}>
        <h2 id=${`p-${product.product}`}>${product.product}</h2>
        <table>
          <caption class="sr-only">Clients of ${product.product}</caption>
          <thead><tr><th scope="col">Client</th><th scope="col">Uploads</th><th scope="col">Jobs by state</th><th scope="col">Latest results</th><th scope="col">Rejections</th></tr></thead>
          <tbody>
            ${product.clients.map(
              (c) => html`<tr>
                <th scope="row">${c.client}</th>
                <td><a href=${`#/storage?prefix=${encodeURIComponent(`${product.product}/${c.client}/inputs/`)}`}>${c.uploads}</a></td>
                <td>${Object.entries(c.jobsByState).map(
                  ([state, n]) =>
                    html`<a class="chip" href=${`#/jobs?product=${product.product}&client=${c.client}&state=${state}`}><${StateBadge} state=${state} /> ${n}</a> `,
                )}${Object.keys(c.jobsByState).length === 0 ? html`<span class="muted">none</span>` : null}</td>
                <td>${
                  c.latestResults.length === 0
                    ? html`<span class="muted">none yet</span>`
                    : html`<ul class="plain">${c.latestResults.map(
                        (r) =>
                          html`<li><code>${r.type.replace('dev.batchwire.', '')}</code> <span class="muted">${time(r.publishTime)}</span></li>`,
                      )}</ul>`
                }</td>
                <td>${
                  c.rejections.length === 0
                    ? html`<span class="muted">none</span>`
                    : html`<ul class="plain">${c.rejections.map(
                        (r) => html`<li><code>${r.name.split('/').pop()}</code>: ${r.message}</li>`,
                      )}</ul>`
                }</td>
              </tr>`,
            )}
          </tbody>
        </table>
      </section>`,
    )}
    ${
      data
        ? html`<section class="panel" aria-labelledby="flows-title">
      <h2 id="flows-title">Flows</h2>
      <${ErrorNote} error=${data.schedulerError} where="Cloud Scheduler" />
      <ul class="plain">${data.schedules.map(
        (s) =>
          html`<li><a href="#/flows">${s.name.split('/').pop()}</a> <span class="muted">${s.schedule ?? 'by hand only'} · next ${time(s.scheduleTime)}</span></li>`,
      )}</ul>
    </section>`
        : null
    }
  </div>`;
}
