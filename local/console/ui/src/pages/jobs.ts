import { html } from 'htm/preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import type { JobDetail, JobsAnswer, PublicConfig } from '../../../api-types.js';
import { bytes, duration, ErrorNote, StateBadge, send, time, useLive } from '../api.js';
import { Timeline } from '../charts.js';
import { navigate, type Route } from '../route.js';

const STATES = ['QUEUED', 'SCHEDULED', 'RUNNING', 'SUCCEEDED', 'FAILED', 'CANCELLED', 'DELETION_IN_PROGRESS'];

export function JobsPage({ route, products }: { route: Route; products: PublicConfig['products'] }) {
  const q = route.query;
  const params = new URLSearchParams();
  for (const key of ['product', 'client', 'state', 'since', 'pageToken']) {
    const value = q.get(key);
    if (value) params.set(key, value);
  }
  const { data, error } = useLive<JobsAnswer>(`/api/jobs?${params}`);
  const set = (key: string, value: string) => {
    const next = new URLSearchParams(params);
    if (value) next.set(key, value);
    else next.delete(key);
    if (key !== 'pageToken') next.delete('pageToken');
    navigate(`#/jobs?${next}`);
  };
  const product = q.get('product') ?? '';
  const clients = product
    ? (products[product]?.clients ?? [])
    : [...new Set(Object.values(products).flatMap((p) => p.clients))];
  const offset = Number(q.get('pageToken') ?? 0);
  return html`<div>
    <h1>Jobs</h1>
    <form class="filters" onSubmit=${(e: Event) => e.preventDefault()} aria-label="Filter jobs">
      <label>Product <select aria-label="Product" value=${product} onChange=${(e: Event) => set('product', (e.target as HTMLSelectElement).value)}>
        <option value="">all</option>${Object.keys(products).map((p) => html`<option value=${p}>${p}</option>`)}
      </select></label>
      <label>Client <select aria-label="Client" value=${q.get('client') ?? ''} onChange=${(e: Event) => set('client', (e.target as HTMLSelectElement).value)}>
        <option value="">all</option>${clients.map((c) => html`<option value=${c}>${c}</option>`)}
      </select></label>
      <label>State <select aria-label="State" value=${q.get('state') ?? ''} onChange=${(e: Event) => set('state', (e.target as HTMLSelectElement).value)}>
        <option value="">all</option>${STATES.map((s) => html`<option value=${s}>${s}</option>`)}
      </select></label>
      <label>Created since <input aria-label="Created since" type="datetime-local" value=${q.get('since') ? toLocalInput(q.get('since') as string) : ''}
        onChange=${(e: Event) => {
          const v = (e.target as HTMLInputElement).value;
          set('since', v ? new Date(v).toISOString() : '');
        }} /></label>
    </form>
    <${ErrorNote} error=${error} where="Listing Batch jobs" />
    ${
      data
        ? html`<p class="muted" aria-live="polite">${data.total} job${data.total === 1 ? '' : 's'}${data.total > 0 ? `, showing ${offset + 1}–${offset + data.jobs.length}` : ''}, newest first</p>
    <table class="jobs">
      <thead><tr><th scope="col">Job</th><th scope="col">State</th><th scope="col">Product / client</th><th scope="col">Tasks</th><th scope="col">Run time</th><th scope="col">Created</th></tr></thead>
      <tbody>${data.jobs.map(
        (job) => html`<tr>
          <td><a href=${`#/jobs/${job.id}`}>${job.id}</a>${job.flow ? html` <span class="muted">(${job.flow})</span>` : null}</td>
          <td><${StateBadge} state=${job.state} />${job.reason ? html`<div class="reason">${job.reason}</div>` : null}</td>
          <td>${job.product} / ${job.client || '—'}</td>
          <td>${
            Object.entries(job.taskCounts)
              .map(([s, n]) => `${n} ${s.toLowerCase()}`)
              .join(', ') || job.taskCount
          }</td>
          <td>${duration(job.runDurationSeconds)}</td>
          <td>${time(job.created)}</td>
        </tr>`,
      )}</tbody>
    </table>
    <nav class="pager" aria-label="Pages of jobs">
      <button type="button" disabled=${offset === 0} onClick=${() => set('pageToken', offset > 50 ? String(offset - 50) : '')}>Newer</button>
      <button type="button" disabled=${!data.nextPageToken} onClick=${() => set('pageToken', data.nextPageToken)}>Older</button>
    </nav>`
        : null
    }
  </div>`;
}

function toLocalInput(iso: string): string {
  const d = new Date(iso);
  return new Date(d.getTime() - d.getTimezoneOffset() * 60_000).toISOString().slice(0, 16);
}

export function JobPage({ id }: { id: string }) {
  const { data, error, reload } = useLive<JobDetail>(`/api/jobs/${encodeURIComponent(id)}`);
  const [actionError, setActionError] = useState('');
  const [busy, setBusy] = useState('');
  const [log, setLog] = useState<{ task: number; attempt: number } | null>(null);
  const act = async (what: 'cancel' | 'delete') => {
    if (what === 'delete' && !window.confirm(`Delete job ${id}? Batch removes it and its tasks.`)) return;
    setBusy(what);
    setActionError('');
    try {
      if (what === 'cancel') await send('POST', `/api/jobs/${encodeURIComponent(id)}/cancel`);
      else await send('DELETE', `/api/jobs/${encodeURIComponent(id)}`);
      reload();
    } catch (err) {
      setActionError((err as Error).message);
    } finally {
      setBusy('');
    }
  };
  return html`<div>
    <p><a href="#/jobs">← Jobs</a></p>
    <h1>Job <code>${id}</code> ${data ? html`<${StateBadge} state=${data.job.state} />` : null}</h1>
    <${ErrorNote} error=${error} where="Reading the job from Batch" />
    ${
      data
        ? html`
    <div class="actions">
      <button type="button" onClick=${() => act('cancel')} disabled=${data.terminal || busy !== '' || data.job.state === 'DELETION_IN_PROGRESS'}>${busy === 'cancel' ? 'Cancelling…' : 'Cancel job'}</button>
      <button type="button" class="danger" onClick=${() => act('delete')} disabled=${busy !== '' || data.job.state === 'DELETION_IN_PROGRESS'}>${busy === 'delete' ? 'Deleting…' : 'Delete job'}</button>
    </div>
    <${ErrorNote} error=${actionError} where="Batch refused" />
    ${data.job.reason ? html`<p class="error" role="status"><strong>Why it failed:</strong> ${data.job.reason}</p>` : null}
    <dl class="facts">
      <dt>Input</dt><dd><code>${data.input || '—'}</code></dd>
      <dt>Product / client</dt><dd>${data.job.product} / ${data.job.client || '—'}</dd>
      <dt>Created</dt><dd>${time(data.job.created)}</dd>
      <dt>Run time</dt><dd>${duration(data.job.runDurationSeconds)}</dd>
    </dl>
    <section class="panel" aria-labelledby="tl-title">
      <h2 id="tl-title">Tasks</h2>
      <${Timeline} attempts=${data.attempts} />
      <table>
        <thead><tr><th scope="col">Task</th><th scope="col">State</th><th scope="col">Attempts</th><th scope="col">Exit code</th><th scope="col">Log</th></tr></thead>
        <tbody>${data.tasks.map(
          (task) => html`<tr>
            <th scope="row">${task.index}</th>
            <td><${StateBadge} state=${task.state} /></td>
            <td>${task.attempts}</td>
            <td>${task.exitCode ?? '—'}</td>
            <td>${Array.from(
              { length: Math.max(1, task.attempts) },
              (_, attempt) => html`<button type="button" class="link"
              aria-pressed=${log?.task === task.index && log.attempt === attempt}
              onClick=${() => setLog({ task: task.index, attempt })}>log of task ${task.index} attempt ${attempt}</button> `,
            )}</td>
          </tr>`,
        )}</tbody>
      </table>
      ${log ? html`<${TaskLog} job=${id} task=${log.task} attempt=${log.attempt} />` : null}
    </section>
    <section class="panel" aria-labelledby="out-title">
      <h2 id="out-title">Outputs</h2>
      <p class="muted"><code>${data.outputPrefix}</code></p>
      ${
        data.outputs.length === 0
          ? html`<p class="muted">Nothing written yet.</p>`
          : html`<ul class="plain">${data.outputs.map(
              (o) =>
                html`<li><a href=${`/api/storage/download?name=${encodeURIComponent(o.name)}`} download>${o.name.split('/').slice(4).join('/')}</a> <span class="muted">${bytes(o.size)}</span></li>`,
            )}</ul>`
      }
      ${data.manifest ? html`<details><summary>Manifest</summary><pre>${JSON.stringify(data.manifest, null, 2)}</pre></details>` : null}
    </section>
    <section class="panel" aria-labelledby="ev-title">
      <h2 id="ev-title">Result event</h2>
      ${
        data.events.length === 0
          ? html`<p class="muted">No event on the client's topic yet${data.terminal ? ' (it arrives shortly after the job ends)' : ''}.</p>`
          : data.events.map(
              (event) => html`<article class="event" aria-label=${`event ${event.type}`}>
          <p><code class="type">${event.type}</code> on <code>${event.topic}</code> · ${time(event.publishTime)}</p>
          <p>ce-id <code class="ce-id">${event.id}</code></p>
          <details open><summary>Data</summary><pre>${JSON.stringify(event.data, null, 2)}</pre></details>
        </article>`,
            )
      }
    </section>
    <section class="panel"><details><summary>Batch job spec</summary><pre>${JSON.stringify(data.spec, null, 2)}</pre></details></section>
    `
        : null
    }
  </div>`;
}

/** A task attempt's log, streamed while it grows. */
function TaskLog({ job, task, attempt }: { job: string; task: number; attempt: number }) {
  const [text, setText] = useState('');
  const [note, setNote] = useState('connecting…');
  const pre = useRef<HTMLPreElement>(null);
  useEffect(() => {
    setText('');
    const source = new EventSource(
      `/api/jobs/${encodeURIComponent(job)}/tasks/${task}/attempts/${attempt}/log`,
    );
    source.addEventListener('log', (e) => {
      setNote('');
      setText((t) => t + (JSON.parse((e as MessageEvent<string>).data) as string));
    });
    source.addEventListener('waiting', () => setNote('no output yet'));
    source.onerror = () => setNote('the log stream was interrupted; it reconnects on its own');
    return () => source.close();
  }, [job, task, attempt]);
  useEffect(() => {
    if (pre.current) pre.current.scrollTop = pre.current.scrollHeight;
  }, [text]);
  return html`<section class="log" aria-label=${`Log of task ${task} attempt ${attempt}`}>
    <h3>Log · task ${task}, attempt ${attempt}</h3>
    ${note ? html`<p class="muted">${note}</p>` : null}
    <pre ref=${pre} tabindex="0" class="log-text">${text}</pre>
  </section>`;
}
