import { html } from 'htm/preact';
import type { TopicEventsAnswer } from '../../../api-types.js';
import { ErrorNote, time, useLive } from '../api.js';
import { navigate, type Route } from '../route.js';

const TYPES = [
  'dev.batchwire.inference.succeeded',
  'dev.batchwire.inference.failed',
  'dev.batchwire.inference.rejected',
  'dev.batchwire.flow.succeeded',
  'dev.batchwire.flow.failed',
];

export function TopicsPage({ route }: { route: Route }) {
  const params = new URLSearchParams();
  const type = route.query.get('type') ?? '';
  const topic = route.query.get('topic') ?? '';
  if (type) params.set('type', type);
  if (topic) params.set('topic', topic);
  const { data, error } = useLive<TopicEventsAnswer>(`/api/topics/events?${params}`, ['topic']);
  const set = (key: string, value: string) => {
    const next = new URLSearchParams(params);
    if (value) next.set(key, value);
    else next.delete(key);
    navigate(`#/topics?${next}`);
  };
  return html`<div>
    <h1>Clients' topics</h1>
    <p class="muted">Every event published to a client's output topic since the console started, newest first (the console has its own subscription on each).</p>
    <form class="filters" onSubmit=${(e: Event) => e.preventDefault()} aria-label="Filter events">
      <label>Topic <select aria-label="Topic" value=${topic} onChange=${(e: Event) => set('topic', (e.target as HTMLSelectElement).value)}>
        <option value="">all</option>${data?.topics.map((t) => html`<option value=${t}>${t}</option>`)}
      </select></label>
      <label>Type <select aria-label="Type" value=${type} onChange=${(e: Event) => set('type', (e.target as HTMLSelectElement).value)}>
        <option value="">all</option>${TYPES.map((t) => html`<option value=${t}>${t}</option>`)}
      </select></label>
    </form>
    <${ErrorNote} error=${error} where="Reading the topics" />
    <div aria-live="polite">
    ${data?.events.length === 0 ? html`<p class="muted">No events yet.</p>` : null}
    ${data?.events.map(
      (event) => html`<article class="panel event" aria-label=${`event ${event.type}`}>
        <p><code class="type">${event.type || '(not a CloudEvent)'}</code> on <code>${event.topic}</code> · ${time(event.publishTime)}
          ${event.subject.startsWith('jobs/') ? html` · <a href=${`#/jobs/${event.subject.slice(5)}`}>${event.subject}</a>` : html` · ${event.subject}`}</p>
        <details><summary>Attributes</summary><table class="attrs"><tbody>${Object.entries(
          event.attributes,
        ).map(
          ([k, v]) => html`<tr><th scope="row"><code>${k}</code></th><td><code>${v}</code></td></tr>`,
        )}</tbody></table></details>
        <details><summary>Data</summary><pre>${JSON.stringify(event.data, null, 2)}</pre></details>
      </article>`,
    )}
    </div>
  </div>`;
}
