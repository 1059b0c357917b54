import { request } from 'node:http';
import { Storage } from '@google-cloud/storage';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalStorageServer, startStorageServer } from '../../local/storage/server.js';

/**
 * Issue 9: on a freshly started platform, bursts of uploads from the Node Storage client failed
 * with ECONNRESET. A burst here is every upload started at once by one real client, whose agent
 * opens one socket per concurrent request.
 */
describe('local storage server under a burst of real-client uploads', () => {
  let server: LocalStorageServer;
  let storage: Storage;

  beforeAll(async () => {
    server = await startStorageServer();
    storage = new Storage({ apiEndpoint: server.url, projectId: 'burst-project' });
    await storage.createBucket('burst-bucket');
  });

  afterAll(async () => {
    await server.close();
  });

  it('stores 300 concurrent uploads (multipart and resumable) with 0 errors', {
    timeout: 120_000,
  }, async () => {
    // Arrange: a platform's finalize listener competes for the same event loop.
    let finalized = 0;
    server.onFinalize(() => {
      finalized += 1;
    });
    const bucket = storage.bucket('burst-bucket');
    const count = 300;

    // Act
    const results = await Promise.allSettled(
      Array.from({ length: count }, (_, index) =>
        bucket
          .file(`prod/client/inputs/${index}.csv`)
          .save(`a,b\n${index},2\n`, { resumable: index % 3 === 0, contentType: 'text/csv' }),
      ),
    );

    // Assert
    const errors = results.flatMap((result) =>
      result.status === 'rejected' ? [String((result.reason as Error).message)] : [],
    );
    expect(errors).toEqual([]);
    const [files] = await bucket.getFiles({ prefix: 'prod/client/inputs/' });
    expect(files).toHaveLength(count);
    expect(finalized).toBe(count);
  });

  it('announces a keep-alive far longer than a stalled client needs to reuse a socket', async () => {
    // The Node agent retires a free socket 1 s before the announced timeout: with the 5 s
    // default, a client stalled for a second reuses a socket the server is closing.
    const keepAlive = await new Promise<string>((resolve, reject) => {
      request(`${server.url}/storage/v1/b/burst-bucket`, (res) => {
        res.resume();
        resolve(String(res.headers['keep-alive'] ?? ''));
      })
        .on('error', reject)
        .end();
    });
    const seconds = Number(/timeout=(\d+)/.exec(keepAlive)?.[1]);
    expect(seconds).toBeGreaterThanOrEqual(60);
  });
});
