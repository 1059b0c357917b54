import { describe, expect, it } from 'vitest';
import { writeTarget } from '#local/storage/write-refusal.js';

const none = () => undefined;
const target = (method: string, api: 'json' | 'upload' | 'download', path: string, query = '') =>
  writeTarget(method, api, path.split('/'), new URLSearchParams(query), (id) =>
    id === 's1' ? { bucket: 'b', name: 'p/c/inputs/resumed.jsonl' } : none(),
  );

describe('writeTarget', () => {
  it('names the object each creating request writes, and nothing for the rest', () => {
    // Uploads: by ?name=, by the session of a resumable upload, or unnamed (multipart body).
    expect(target('POST', 'upload', 'b/b/o', 'uploadType=media&name=a/x')).toEqual({
      bucket: 'b',
      name: 'a/x',
    });
    expect(target('PUT', 'upload', 'b/b/o', 'uploadType=resumable&upload_id=s1')).toEqual({
      bucket: 'b',
      name: 'p/c/inputs/resumed.jsonl',
    });
    expect(target('POST', 'upload', 'b/b/o', 'uploadType=multipart')).toEqual({ bucket: 'b' });
    // Copy, rewrite, compose: their destination.
    expect(target('POST', 'json', 'b/src/o/x/copyTo/b/dst/o/y/z')).toEqual({ bucket: 'dst', name: 'y/z' });
    expect(target('POST', 'json', 'b/src/o/x/rewriteTo/b/dst/o/y')).toEqual({ bucket: 'dst', name: 'y' });
    expect(target('POST', 'json', 'b/b/o/whole/compose')).toEqual({ bucket: 'b', name: 'whole' });
    // Nothing created: reads, listings, metadata, deletions, a cancelled session, bucket calls.
    expect(target('GET', 'json', 'b/b/o/x')).toBeUndefined();
    expect(target('GET', 'download', 'b/b/o/x')).toBeUndefined();
    expect(target('PATCH', 'json', 'b/b/o/x')).toBeUndefined();
    expect(target('DELETE', 'json', 'b/b/o/x')).toBeUndefined();
    expect(target('DELETE', 'upload', 'b/b/o', 'upload_id=s1')).toBeUndefined();
    expect(target('POST', 'json', 'b')).toBeUndefined();
  });
});
