import './styles.css';
import { html } from 'htm/preact';
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import type { PublicConfig } from '../../api-types.js';
import { connect, ErrorNote, get, onLive, useConnected } from './api.js';
import { ExecutionPage, FlowsPage } from './pages/flows.js';
import { JobPage, JobsPage } from './pages/jobs.js';
import { OverviewPage } from './pages/overview.js';
import { StoragePage } from './pages/storage.js';
import { TopicsPage } from './pages/topics.js';
import { currentRoute } from './route.js';

const NAV = [
  ['', 'Overview'],
  ['jobs', 'Jobs'],
  ['flows', 'Flows'],
  ['topics', "Clients' topics"],
  ['storage', 'Storage'],
] as const;

function App() {
  const [route, setRoute] = useState(currentRoute());
  const [config, setConfig] = useState<PublicConfig | null>(null);
  const [error, setError] = useState('');
  const [last, setLast] = useState('');
  const connected = useConnected();
  useEffect(() => {
    const update = () => {
      setRoute(currentRoute());
      // Move focus to the new page's heading, as a full page load would for a screen reader.
      requestAnimationFrame(() => document.querySelector<HTMLElement>('main h1')?.focus());
    };
    window.addEventListener('hashchange', update);
    get<PublicConfig>('/api/config').then(setConfig, (err: Error) => setError(err.message));
    connect();
    const off = onLive((event, data) => {
      if (event === 'activity') setLast((data as { message: string }).message);
    });
    return () => {
      window.removeEventListener('hashchange', update);
      off();
    };
  }, []);
  const [section = '', a, b] = route.parts;
  const products = config?.products ?? {};
  let page = null;
  if (section === '') page = html`<${OverviewPage} />`;
  else if (section === 'jobs' && a) page = html`<${JobPage} id=${a} key=${a} />`;
  else if (section === 'jobs') page = html`<${JobsPage} route=${route} products=${products} />`;
  else if (section === 'flows' && a && b) page = html`<${ExecutionPage} workflow=${a} id=${b} key=${b} />`;
  else if (section === 'flows') page = html`<${FlowsPage} />`;
  else if (section === 'topics') page = html`<${TopicsPage} route=${route} />`;
  else if (section === 'storage') page = html`<${StoragePage} route=${route} products=${products} />`;
  else
    page = html`<h1>Not found</h1><p>There is no console page at <code>#/${route.parts.join('/')}</code>.</p>`;
  return html`
    <a class="skip" href="#main" onClick=${(e: Event) => {
      e.preventDefault();
      document.getElementById('main')?.focus();
    }}>Skip to content</a>
    <header>
      <span class="brand">Batchwire</span>
      <nav aria-label="Console">
        <ul>${NAV.map(
          ([path, label]) =>
            html`<li><a href=${`#/${path}`} aria-current=${section === path ? 'page' : undefined}>${label}</a></li>`,
        )}</ul>
      </nav>
      <span class=${connected ? 'live' : 'live off'} role="status">${connected ? 'live' : 'reconnecting…'}</span>
    </header>
    <main id="main" tabindex="-1">
      <${ErrorNote} error=${error} where="Reading the console's config" />
      ${page}
    </main>
    <footer><span class="muted" aria-live="off">${last ? `latest: ${last}` : 'waiting for activity'}</span></footer>`;
}

const root = document.getElementById('app');
if (root) {
  root.textContent = '';
  render(html`<${App} />`, root);
}
