import { describe, expect, it } from 'vitest';
import { Catalog } from '#local/storage/catalog.js';
import type { ObjectRecord } from '#local/storage/resources.js';
import { MemoryBackend } from '#local/storage/store.js';

async function catalogWith(names: string[], options: { versioning?: boolean } = {}) {
  const finalized: ObjectRecord[] = [];
  const backend = new MemoryBackend();
  const catalog = await Catalog.open(backend, (record) => finalized.push(record));
  await catalog.createBucket('p', { name: 'bkt', versioning: { enabled: options.versioning ?? false } });
  for (const name of names) await put(catalog, name, name);
  return { catalog, backend, finalized };
}

async function put(catalog: Catalog, name: string, content: string, preconditions = {}) {
  const writer = catalog.backend.createBlob();
  await writer.write(Buffer.from(content));
  return catalog.finalize({ bucket: 'bkt', name, fields: {}, preconditions }, await writer.commit());
}

/** Every page of a listing, following nextPageToken. */
function allPages(catalog: Catalog, query: Parameters<Catalog['listObjects']>[1]) {
  const pages: Array<{ items: string[]; prefixes: string[] }> = [];
  let pageToken: string | undefined;
  do {
    const page = catalog.listObjects('bkt', { ...query, pageToken });
    pages.push({ items: page.items.map((r) => r.name), prefixes: page.prefixes });
    pageToken = page.nextPageToken;
  } while (pageToken);
  return pages;
}

describe('Catalog.listBuckets', () => {
  it('pages through the buckets with a prefix in name order, each once', async () => {
    // Arrange
    const catalog = await Catalog.open(new MemoryBackend(), () => {});
    for (const name of ['team-c', 'team-a', 'other', 'team-b']) await catalog.createBucket('p', { name });

    // Act
    const first = catalog.listBuckets({ prefix: 'team-', maxResults: 2 });
    const second = catalog.listBuckets({ prefix: 'team-', maxResults: 2, pageToken: first.nextPageToken });

    // Assert
    expect(first.items.map((bucket) => bucket.name)).toEqual(['team-a', 'team-b']);
    expect(second.items.map((bucket) => bucket.name)).toEqual(['team-c']);
    expect(second.nextPageToken).toBeUndefined();
  });
});

describe('Catalog.listObjects', () => {
  it('pages through items and prefixes together, never repeating a prefix', async () => {
    // Arrange
    const { catalog } = await catalogWith(['a/1', 'a/2', 'b', 'c/1', 'c/2', 'c/3', 'd', 'e/x/y']);

    // Act
    const pages = allPages(catalog, { delimiter: '/', maxResults: 2 });

    // Assert
    expect(pages).toEqual([
      { items: ['b'], prefixes: ['a/'] },
      { items: ['d'], prefixes: ['c/'] },
      { items: [], prefixes: ['e/'] },
    ]);
  });

  it('returns each name once across pages of size 1 with a delimiter', async () => {
    // Arrange
    const { catalog } = await catalogWith(['a/1', 'a/2', 'b', 'c/1', 'c/2', 'd']);

    // Act
    const pages = allPages(catalog, { delimiter: '/', maxResults: 1 });

    // Assert
    expect(pages.flatMap((p) => [...p.prefixes, ...p.items])).toEqual(['a/', 'b', 'c/', 'd']);
    expect(pages.every((p) => p.items.length + p.prefixes.length === 1)).toBe(true);
  });

  it('sorts by UTF-8 bytes, as GCS does', async () => {
    // Arrange: U+FF5E sorts before U+1F600 in UTF-8, after it in UTF-16.
    const { catalog } = await catalogWith(['\u{1F600}', '\uFF5E']);

    // Act
    const names = catalog.listObjects('bkt', {}).items.map((r) => r.name);

    // Assert
    expect(names).toEqual(['\uFF5E', '\u{1F600}']);
  });

  it('honours startOffset and endOffset', async () => {
    const { catalog } = await catalogWith(['a', 'b', 'c', 'd']);
    expect(catalog.listObjects('bkt', { startOffset: 'b', endOffset: 'd' }).items.map((r) => r.name)).toEqual(
      ['b', 'c'],
    );
  });
});

describe('Catalog versioning and preconditions', () => {
  it('keeps noncurrent generations in a versioned bucket and lists them with versions', async () => {
    // Arrange
    const { catalog } = await catalogWith([], { versioning: true });
    const first = await put(catalog, 'obj', 'one');

    // Act
    const second = await put(catalog, 'obj', 'two');
    const versions = catalog.listObjects('bkt', { versions: true }).items;

    // Assert
    expect(versions.map((r) => r.generation)).toEqual([first.generation, second.generation]);
    expect(versions[0]?.timeDeleted).toBeDefined();
    expect(catalog.getObject('bkt', 'obj', first.generation).generation).toBe(first.generation);
    expect(catalog.listObjects('bkt', {}).items).toHaveLength(1);
  });

  it('drops the old generation without versioning', async () => {
    // Arrange
    const { catalog } = await catalogWith([]);
    const first = await put(catalog, 'obj', 'one');

    // Act
    await put(catalog, 'obj', 'two');

    // Assert
    expect(() => catalog.getObject('bkt', 'obj', first.generation)).toThrow(/No such object/);
    await expect(catalog.read(first, 0, 2)).rejects.toMatchObject({ status: 404 });
  });

  it('fails writes with 412 and failed NotMatch reads with 304', async () => {
    // Arrange
    const { catalog, finalized } = await catalogWith([]);
    const record = await put(catalog, 'obj', 'one');

    // Act / Assert
    await expect(put(catalog, 'obj', 'two', { ifGenerationMatch: 0 })).rejects.toMatchObject({ status: 412 });
    await expect(put(catalog, 'obj', 'two', { ifMetagenerationMatch: 2 })).rejects.toMatchObject({
      status: 412,
    });
    expect(() =>
      catalog.checkPreconditions(record, { ifGenerationNotMatch: record.generation }, true),
    ).toThrow(expect.objectContaining({ status: 304 }));
    await expect(put(catalog, 'obj', 'two', { ifGenerationMatch: record.generation })).resolves.toBeDefined();
    expect(finalized).toHaveLength(2);
  });

  it('refuses to delete a bucket that still has objects', async () => {
    const { catalog } = await catalogWith(['x']);
    await expect(catalog.deleteBucket('bkt', {})).rejects.toMatchObject({ status: 409 });
  });
});
