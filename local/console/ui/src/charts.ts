import { html } from 'htm/preact';
import type { MinutePoint, SlotSample, TaskAttempt } from '../../api-types.js';

// Two small SVG charts, drawn by hand rather than with a charting library: they are a few
// rectangles each, SVG keeps them readable by screen readers (each bar has a <title>), and the
// console ships no canvas library for it.

/** One bar per task attempt, on a shared time axis; running attempts grow to now. */
export function Timeline({ attempts }: { attempts: TaskAttempt[] }) {
  if (attempts.length === 0) return html`<p class="muted">No task has started yet.</p>`;
  const now = Date.now();
  const starts = attempts.map((a) => Date.parse(a.start));
  const ends = attempts.map((a) => (a.end ? Date.parse(a.end) : now));
  const t0 = Math.min(...starts);
  const t1 = Math.max(...ends, t0 + 1);
  const row = 22;
  const left = 120;
  const width = 640;
  const height = attempts.length * row + 24;
  const x = (t: number) => left + ((t - t0) / (t1 - t0)) * (width - left - 10);
  return html`<svg class="timeline" role="img" viewBox=${`0 0 ${width} ${height}`}
    aria-label=${`Timeline of ${attempts.length} task attempts over ${((t1 - t0) / 1000).toFixed(1)} seconds`}>
    ${attempts.map((a, i) => {
      const start = starts[i] as number;
      const end = ends[i] as number;
      const y = i * row + 4;
      const label = `task ${a.task} attempt ${a.attempt}: ${a.state}${a.exitCode === null ? '' : `, exit ${a.exitCode}`}, ${((end - start) / 1000).toFixed(2)} s`;
      return html`<g>
        <text x="4" y=${y + 14} class="axis">task ${a.task} · #${a.attempt}</text>
        <rect x=${x(start)} y=${y} width=${Math.max(3, x(end) - x(start))} height=${row - 6} rx="3"
          class=${`bar bar-${a.state.toLowerCase()}`}><title>${label}</title></rect>
      </g>`;
    })}
    <text x=${left} y=${height - 4} class="axis">0 s</text>
    <text x=${width - 10} y=${height - 4} class="axis" text-anchor="end">${((t1 - t0) / 1000).toFixed(1)} s</text>
  </svg>`;
}

/** Uploads and results per minute (paired bars), last 30 minutes. */
export function Throughput({ minutes }: { minutes: MinutePoint[] }) {
  const width = 640;
  const height = 140;
  const max = Math.max(1, ...minutes.flatMap((m) => [m.uploads, m.results]));
  const slot = (width - 40) / Math.max(1, minutes.length);
  const y = (v: number) => height - 20 - (v / max) * (height - 36);
  const total = minutes.reduce((sum, m) => ({ u: sum.u + m.uploads, r: sum.r + m.results }), { u: 0, r: 0 });
  return html`<svg class="chart" role="img" viewBox=${`0 0 ${width} ${height}`}
    aria-label=${`Throughput over the last ${minutes.length} minutes: ${total.u} uploads, ${total.r} results`}>
    <text x="4" y="12" class="axis">${max}/min</text>
    ${minutes.map((m, i) => {
      const x = 36 + i * slot;
      const w = Math.max(1, slot / 2 - 1);
      return html`<g>
        <rect x=${x} y=${y(m.uploads)} width=${w} height=${height - 20 - y(m.uploads)} class="bar-uploads">
          <title>${new Date(m.time).toLocaleTimeString()}: ${m.uploads} uploads</title></rect>
        <rect x=${x + w + 1} y=${y(m.results)} width=${w} height=${height - 20 - y(m.results)} class="bar-results">
          <title>${new Date(m.time).toLocaleTimeString()}: ${m.results} results</title></rect>
      </g>`;
    })}
    <line x1="36" x2=${width - 4} y1=${height - 20} y2=${height - 20} class="axis-line" />
    <text x="36" y=${height - 4} class="axis">−${minutes.length} min</text>
    <text x=${width - 4} y=${height - 4} class="axis" text-anchor="end">now</text>
  </svg>
  <p class="legend"><span class="key key-uploads"></span> uploads <span class="key key-results"></span> results (per minute)</p>`;
}

/** Running tasks over time, as Batch reports them. */
export function Slots({ samples }: { samples: SlotSample[] }) {
  const width = 640;
  const height = 110;
  if (samples.length === 0) return html`<p class="muted">No samples yet.</p>`;
  const max = Math.max(1, ...samples.map((s) => s.running));
  const step = (width - 40) / Math.max(1, samples.length - 1);
  const points = samples
    .map((s, i) => `${36 + i * step},${height - 20 - (s.running / max) * (height - 36)}`)
    .join(' ');
  const last = samples.at(-1)?.running ?? 0;
  return html`<svg class="chart" role="img" viewBox=${`0 0 ${width} ${height}`}
    aria-label=${`Task slots in use: ${last} now, at most ${max} over the last ${samples.length} samples`}>
    <text x="4" y="12" class="axis">${max}</text>
    <polyline points=${`36,${height - 20} ${points} ${36 + (samples.length - 1) * step},${height - 20}`} class="area" />
    <line x1="36" x2=${width - 4} y1=${height - 20} y2=${height - 20} class="axis-line" />
    <text x=${width - 4} y=${height - 4} class="axis" text-anchor="end">now: ${last} running</text>
  </svg>`;
}
