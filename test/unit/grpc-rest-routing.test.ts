import { describe, expect, it } from 'vitest';
import { compileJobFilter } from '#local/batch/list-filter.js';
import type { JobMessage } from '#local/batch/types.js';
import { paginate } from '#local/grpc/paging.js';
import { compilePathTemplate, matchPathTemplate, splitVerb } from '#local/grpc/path-template.js';

const match = (template: string, url: string) => {
  const { path, verb } = splitVerb(url);
  return matchPathTemplate(compilePathTemplate(template), path, verb);
};

// Templates as google/api/http.proto defines them and the Batch, Run and Workflows protos use them.
describe('path templates of google.api.http rules', () => {
  it('binds a multi-segment variable and the literal around it', () => {
    expect(
      match('/v1/{parent=projects/*/locations/*}/jobs', '/v1/projects/p/locations/us-central1/jobs'),
    ).toEqual({
      parent: 'projects/p/locations/us-central1',
    });
    expect(match('/v1/{parent=projects/*/locations/*}/jobs', '/v1/projects/p/jobs')).toBeUndefined();
    expect(
      match('/v1/{parent=projects/*/locations/*}/jobs', '/v1/projects/p/locations/l/jobs/j'),
    ).toBeUndefined();
  });

  it('matches a custom verb apart from the segments: jobs/* does not swallow jobs/j:run', () => {
    const get = '/v2/{name=projects/*/locations/*/jobs/*}';
    const run = '/v2/{name=projects/*/locations/*/jobs/*}:run';
    expect(match(get, '/v2/projects/p/locations/l/jobs/j:run')).toBeUndefined();
    expect(match(run, '/v2/projects/p/locations/l/jobs/j:run')).toEqual({
      name: 'projects/p/locations/l/jobs/j',
    });
    expect(match(run, '/v2/projects/p/locations/l/jobs/j')).toBeUndefined();
  });

  it('reads {field} as {field=*}, ** as the rest of the path, and percent-decodes values', () => {
    expect(match('/v1/things/{id}', '/v1/things/a%20b')).toEqual({ id: 'a b' });
    expect(match('/v1/things/{id}', '/v1/things/a/b')).toBeUndefined();
    expect(match('/v1/{name=operations/**}', '/v1/operations/a/b/c')).toEqual({ name: 'operations/a/b/c' });
  });

  it('keeps nested field paths as written (body and path fill them later)', () => {
    expect(compilePathTemplate('/v2/{job.name=projects/*/locations/*/jobs/*}').variables).toEqual([
      'job.name',
    ]);
  });

  it('refuses templates outside the grammar', () => {
    expect(() => compilePathTemplate('v1/x')).toThrow(/must start with/);
    expect(() => compilePathTemplate('/v1/{name=projects/*')).toThrow(/unclosed/);
  });
});

describe('paging (AIP-158)', () => {
  const items = Array.from({ length: 5 }, (_, i) => i);

  it('walks every item once, page by page, with an opaque token', () => {
    const seen: number[] = [];
    let token = '';
    do {
      const { page, next_page_token } = paginate(items, { page_size: 2, page_token: token }, { scope: 'a' });
      seen.push(...page);
      token = next_page_token;
    } while (token);
    expect(seen).toEqual(items);
  });

  it('answers the whole list for page_size 0 and refuses a token of another list or a made-up one', () => {
    expect(paginate(items, { page_size: 0 }, { scope: 'a' }).page).toEqual(items);
    const { next_page_token } = paginate(items, { page_size: 1 }, { scope: 'a' });
    expect(() => paginate(items, { page_size: 1, page_token: next_page_token }, { scope: 'b' })).toThrow(
      /invalid page_token/,
    );
    expect(() => paginate(items, { page_token: 'nonsense' }, { scope: 'a' })).toThrow(/invalid page_token/);
  });
});

describe("Batch's ListJobs filter", () => {
  const job = (name: string, created: string, state = 'SUCCEEDED', labels: Record<string, string> = {}) =>
    ({
      name,
      uid: name,
      labels,
      status: { state },
      create_time: { seconds: String(Date.parse(created) / 1000), nanos: 0 },
      update_time: { seconds: String(Date.parse(created) / 1000), nanos: 0 },
    }) as unknown as JobMessage;
  const old = job('old', '2026-01-01T00:00:00Z', 'FAILED', { product: 'a' });
  const recent = job('recent', '2026-06-01T00:00:00Z', 'SUCCEEDED', { product: 'b' });

  it('compares create_time (or createTime) with an RFC 3339 instant (AIP-160 comparisons)', () => {
    expect([old, recent].filter(compileJobFilter('create_time>"2026-03-01T00:00:00Z"'))).toEqual([recent]);
    expect([old, recent].filter(compileJobFilter('createTime<="2026-01-01T00:00:00Z"'))).toEqual([old]);
  });

  it('joins clauses with AND and reads state and labels', () => {
    const filter = compileJobFilter('status.state="FAILED" AND labels.product="a"');
    expect([old, recent].filter(filter)).toEqual([old]);
  });

  it('rejects an unknown field or a timestamp that does not parse with INVALID_ARGUMENT', () => {
    expect(() => compileJobFilter('colour="red"')).toThrow(expect.objectContaining({ code: 3 }));
    expect(() => compileJobFilter('create_time>"yesterday"')).toThrow(/RFC 3339/);
  });
});
