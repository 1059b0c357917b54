import { html } from 'htm/preact';
import { useState } from 'preact/hooks';
import type { ExecutionDetail, FlowRunAnswer, FlowsAnswer } from '../../../api-types.js';
import { duration, ErrorNote, StateBadge, send, time, useLive } from '../api.js';

export function FlowsPage() {
  const { data, error, reload } = useLive<FlowsAnswer>('/api/flows');
  const [running, setRunning] = useState('');
  const [outcome, setOutcome] = useState<Record<string, string>>({});
  const runNow = async (id: string) => {
    setRunning(id);
    try {
      const answer = await send<FlowRunAnswer>('POST', `/api/flows/${encodeURIComponent(id)}/run`);
      const attempt = answer.lastAttempt;
      const body = attempt?.body as { message?: string; error?: string } | undefined;
      setOutcome((o) => ({
        ...o,
        [id]:
          attempt && attempt.status < 300
            ? `started (onSchedule answered ${attempt.status})`
            : `onSchedule answered ${attempt?.status}: ${body?.message ?? body?.error ?? JSON.stringify(body)}`,
      }));
      reload();
    } catch (err) {
      setOutcome((o) => ({ ...o, [id]: `could not run: ${(err as Error).message}` }));
    } finally {
      setRunning('');
    }
  };
  return html`<div>
    <h1>Flows</h1>
    <${ErrorNote} error=${error} where="Reading Cloud Scheduler and Workflows" />
    ${data?.errors.map((message) => html`<${ErrorNote} error=${message} where="Workflows" />`)}
    ${data?.schedules.map(
      (s) => html`<section class="panel" aria-labelledby=${`f-${s.id}`}>
        <h2 id=${`f-${s.id}`}>${s.request.flow} · ${s.request.product}${s.request.client ? ` / ${s.request.client}` : ''}</h2>
        <p class="muted">Scheduler job <code>${s.id}</code> · ${s.schedule ? `${s.schedule} (${s.timeZone})` : 'no schedule: by hand only'} · next tick ${s.scheduleTime ? time(s.scheduleTime) : 'none (schedules are off: batchwire dev --no-schedules)'}</p>
        <div class="actions">
          <button type="button" onClick=${() => runNow(s.id)} disabled=${running === s.id} aria-label=${`Run ${s.id} now`}>${running === s.id ? 'Running…' : 'Run now'}</button>
          ${outcome[s.id] ? html`<span role="status" class=${outcome[s.id]?.startsWith('started') ? 'ok' : 'error'}>${outcome[s.id]}</span>` : null}
        </div>
        ${
          s.runs.length === 0
            ? html`<p class="muted">No runs yet.</p>`
            : html`<table>
          <thead><tr><th scope="col">Run</th><th scope="col">Outcome</th><th scope="col">Started</th><th scope="col">Duration</th></tr></thead>
          <tbody>${s.runs.map(
            (r) => html`<tr>
              <td><a href=${`#/flows/${r.workflow}/${r.id}`}>${r.id}</a></td>
              <td><${StateBadge} state=${r.state} />${r.error ? html`<div class="reason">${r.error.message}</div>` : null}</td>
              <td>${time(r.start)}</td>
              <td>${duration(r.durationSeconds)}</td>
            </tr>`,
          )}</tbody></table>`
        }
      </section>`,
    )}
  </div>`;
}

export function ExecutionPage({ workflow, id }: { workflow: string; id: string }) {
  const { data, error } = useLive<ExecutionDetail>(
    `/api/executions/${encodeURIComponent(workflow)}/${encodeURIComponent(id)}`,
  );
  const e = data?.execution;
  return html`<div>
    <p><a href="#/flows">← Flows</a></p>
    <h1>Run <code>${id}</code> ${e ? html`<${StateBadge} state=${e.state} />` : null}</h1>
    <${ErrorNote} error=${error} where="Reading the Workflows execution" />
    ${
      e
        ? html`
      <dl class="facts">
        <dt>Workflow</dt><dd><code>${e.workflow}</code></dd>
        <dt>Started</dt><dd>${time(e.start)}</dd>
        <dt>Ended</dt><dd>${time(e.end)}</dd>
        <dt>Duration</dt><dd>${duration(e.durationSeconds)}</dd>
      </dl>
      <section class="panel" aria-labelledby="steps-title">
        <h2 id="steps-title">Steps</h2>
        ${
          data.steps.length > 0
            ? html`<table>
          <caption class="muted">Steps entered, as the console saw them (it reads the execution's current step every 0.1 s while it runs)</caption>
          <thead><tr><th scope="col">#</th><th scope="col">Step</th><th scope="col">Entered</th><th scope="col">Duration</th></tr></thead>
          <tbody>${data.steps.map(
            (s, i) => html`<tr>
            <td>${i + 1}</td><td><code>${s.routine}.${s.step}</code></td><td>${time(s.start)}</td>
            <td>${s.end ? duration((Date.parse(s.end) - Date.parse(s.start)) / 1000) : 'running'}</td></tr>`,
          )}</tbody>
        </table>`
            : html`<p class="muted">No step history: Workflows reported no current step while the console watched this run.</p>`
        }
        ${e.currentSteps.length > 0 ? html`<p>Now in: ${e.currentSteps.map((s) => html`<code>${s.routine}.${s.step}</code> `)}</p>` : null}
        ${
          e.error
            ? html`<div class="error" role="status"><p><strong>Failed:</strong> ${e.error.message}</p>
          ${e.error.steps.length > 0 ? html`<ol>${e.error.steps.map((s) => html`<li>step <code>${s.step}</code> in <code>${s.routine}</code>${s.line ? ` (line ${s.line})` : ''}</li>`)}</ol>` : null}
          ${e.error.context ? html`<pre>${e.error.context}</pre>` : null}</div>`
            : e.state === 'SUCCEEDED'
              ? html`<p class="ok">Every step completed.</p>`
              : null
        }
        <details><summary>Argument</summary><pre>${JSON.stringify(e.argument, null, 2)}</pre></details>
        <details open=${e.state === 'SUCCEEDED'}><summary>Result</summary><pre>${JSON.stringify(e.result, null, 2)}</pre></details>
      </section>
      <section class="panel" aria-labelledby="started-title">
        <h2 id="started-title">What it started</h2>
        ${data.jobs.length === 0 && data.runExecutions.length === 0 ? html`<p class="muted">No Batch job or Run execution yet.</p>` : null}
        <ul class="plain">
          ${data.jobs.map((j) => html`<li>Batch job <a href=${`#/jobs/${j.id}`}>${j.id}</a> <${StateBadge} state=${j.state} /></li>`)}
          ${data.runExecutions.map((r) => html`<li>Cloud Run execution <code>${r.name.split('/').pop()}</code>: ${r.succeeded} succeeded, ${r.failed} failed</li>`)}
        </ul>
      </section>`
        : null
    }
  </div>`;
}
