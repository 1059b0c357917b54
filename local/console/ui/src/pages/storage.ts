import { html } from 'htm/preact';
import { useState } from 'preact/hooks';
import type { PublicConfig, RejectionsAnswer, StorageListing, UploadAnswer } from '../../../api-types.js';
import { bytes, ErrorNote, send, time, useLive } from '../api.js';
import { navigate, type Route } from '../route.js';

export function StoragePage({ route, products }: { route: Route; products: PublicConfig['products'] }) {
  const prefix = route.query.get('prefix') ?? '';
  const { data, error } = useLive<StorageListing>(`/api/storage?prefix=${encodeURIComponent(prefix)}`);
  const rejections = useLive<RejectionsAnswer>('/api/rejections');
  const crumbs = prefix.split('/').filter(Boolean);
  return html`<div>
    <h1>Storage</h1>
    <${UploadPanel} products=${products} />
    <section class="panel" aria-labelledby="browse-title">
      <h2 id="browse-title">Bucket</h2>
      <nav aria-label="Prefix" class="crumbs">
        <a href="#/storage">bucket root</a>${crumbs.map(
          (c, i) =>
            html` / <a href=${`#/storage?prefix=${encodeURIComponent(`${crumbs.slice(0, i + 1).join('/')}/`)}`}>${c}</a>`,
        )}
      </nav>
      <${ErrorNote} error=${error} where="Listing the bucket" />
      ${
        data
          ? html`<table>
        <thead><tr><th scope="col">Name</th><th scope="col">Size</th><th scope="col">Updated</th></tr></thead>
        <tbody>
          ${data.prefixes.map((p) => html`<tr><td colspan="3"><a href=${`#/storage?prefix=${encodeURIComponent(p)}`}>${p.slice(prefix.length)}</a></td></tr>`)}
          ${data.objects.map((o) => html`<tr><td><a href=${`/api/storage/download?name=${encodeURIComponent(o.name)}`} download>${o.name.slice(prefix.length)}</a></td><td>${bytes(o.size)}</td><td>${time(o.updated)}</td></tr>`)}
          ${data.prefixes.length + data.objects.length === 0 ? html`<tr><td colspan="3" class="muted">Nothing under this prefix.</td></tr>` : null}
        </tbody></table>`
          : null
      }
    </section>
    <section class="panel" aria-labelledby="rej-title">
      <h2 id="rej-title">Rejected uploads</h2>
      <${ErrorNote} error=${rejections.error} where="Reading rejection records" />
      ${
        rejections.data?.length === 0
          ? html`<p class="muted">None.</p>`
          : html`<table>
        <thead><tr><th scope="col">File</th><th scope="col">Reason</th><th scope="col">When</th></tr></thead>
        <tbody>${rejections.data?.map((r) => html`<tr><td><code>${r.name}</code></td><td><strong>${r.reason}</strong>: ${r.message}</td><td>${time(r.rejectedAt)}</td></tr>`)}</tbody>
      </table>`
      }
    </section>
  </div>`;
}

function UploadPanel({ products }: { products: PublicConfig['products'] }) {
  const productNames = Object.keys(products);
  const [product, setProduct] = useState(productNames[0] ?? '');
  const [client, setClient] = useState(products[productNames[0] ?? '']?.clients[0] ?? '');
  const [status, setStatus] = useState<{ ok: boolean; text: string } | null>(null);
  const [over, setOver] = useState(false);
  const upload = async (files: FileList | null) => {
    if (!files || files.length === 0) return;
    for (const file of Array.from(files)) {
      setStatus({ ok: true, text: `uploading ${file.name}…` });
      try {
        const answer = await send<UploadAnswer>(
          'POST',
          `/api/upload?${new URLSearchParams({ product, client, name: file.name })}`,
          file,
        );
        setStatus({
          ok: true,
          text: `uploaded ${answer.uploaded}: onUpload checks it now: its job appears under Jobs, or its rejection below`,
        });
      } catch (err) {
        setStatus({ ok: false, text: `could not upload ${file.name}: ${(err as Error).message}` });
      }
    }
  };
  const clients = products[product]?.clients ?? [];
  return html`<section class="panel" aria-labelledby="upload-title">
    <h2 id="upload-title">Upload as a client</h2>
    <div class="filters">
      <label>Product <select aria-label="Product" value=${product} onChange=${(e: Event) => {
        const p = (e.target as HTMLSelectElement).value;
        setProduct(p);
        setClient(products[p]?.clients[0] ?? '');
      }}>
        ${productNames.map((p) => html`<option value=${p}>${p}</option>`)}</select></label>
      <label>Client <select aria-label="Client" value=${client} onChange=${(e: Event) => setClient((e.target as HTMLSelectElement).value)}>
        ${clients.map((c) => html`<option value=${c}>${c}</option>`)}</select></label>
    </div>
    <div class=${`dropzone${over ? ' over' : ''}`}
      onDragOver=${(e: DragEvent) => {
        e.preventDefault();
        setOver(true);
      }}
      onDragLeave=${() => setOver(false)}
      onDrop=${(e: DragEvent) => {
        e.preventDefault();
        setOver(false);
        void upload(e.dataTransfer?.files ?? null);
      }}>
      <p>Drop files here to upload them to <code>${product}/${client}/inputs/</code>${' '}
        (accepted: ${(products[product]?.acceptedExtensions ?? []).join(', ')}), or</p>
      <label class="button">Choose files<input type="file" multiple class="sr-only" aria-label="Choose files to upload"
        onChange=${(e: Event) => void upload((e.target as HTMLInputElement).files)} /></label>
    </div>
    ${status ? html`<p role="status" class=${status.ok ? 'ok' : 'error'}>${status.text}</p>` : null}
    <p class="muted">The file lands as any client upload does, so Eventarc calls onUpload and the same checks apply.${' '}
      <button type="button" class="link" onClick=${() => navigate('#/jobs')}>Go to Jobs</button></p>
  </section>`;
}
