import { describe, expect, it } from 'vitest';
import {
  claimDoneObjectName,
  claimObjectName,
  flowOutputPrefix,
  inputObjectName,
  objectUri,
  outputPrefix,
  parseObjectName,
  parseObjectUri,
} from '#shared/domain/object-path.js';

describe('parseObjectName', () => {
  it('finds product, client and path of an input', () => {
    // Act
    const parsed = parseObjectName('mlops-template/acme/inputs/2024/batch-1.jsonl');

    // Assert
    expect(parsed).toEqual({
      kind: 'input',
      product: 'mlops-template',
      client: 'acme',
      path: '2024/batch-1.jsonl',
    });
  });

  it.each([
    ['mlops-template/acme/outputs/bw-x/part-0.jsonl', 'not-inputs'],
    ['mlops-template/acme/models/model.bin', 'not-inputs'],
    ['mlops-template/acme/inputs', 'not-inputs'],
    ['other/thing.jsonl', 'not-inputs'],
    ['top-level.jsonl', 'not-inputs'],
    ['_batchwire/rejections/mlops-template/acme/abc.json', 'bookkeeping'],
    ['_batchwire/mlops-template/acme/inputs/x.jsonl', 'bookkeeping'],
  ])('%s is not an input (%s)', (name, reason) => {
    expect(parseObjectName(name)).toEqual({ kind: 'not-input', reason });
  });

  it('keeps a suspicious path for the validator to reject rather than ignoring it', () => {
    // Act
    const parsed = parseObjectName('mlops-template/acme/inputs/../../x.jsonl');

    // Assert
    expect(parsed).toMatchObject({ kind: 'input', path: '../../x.jsonl' });
  });

  it('keeps an empty path (a folder placeholder is recognised by its size later)', () => {
    expect(parseObjectName('mlops-template/acme/inputs/')).toMatchObject({ kind: 'input', path: '' });
  });
});

describe('object URIs', () => {
  it('round-trips a name with slashes and spaces', () => {
    // Arrange
    const uri = objectUri('my-bucket', 'p/c/inputs/a b/c#1.jsonl');

    // Act + Assert
    expect(uri).toBe('gs://my-bucket/p/c/inputs/a b/c#1.jsonl');
    expect(parseObjectUri(uri)).toEqual({ bucket: 'my-bucket', name: 'p/c/inputs/a b/c#1.jsonl' });
  });

  it('refuses what is not a gs:// URI', () => {
    expect(parseObjectUri('https://example.com/x')).toBeUndefined();
  });

  it('puts outputs under the job id', () => {
    expect(outputPrefix('mlops-template', 'acme', 'bw-1')).toBe('mlops-template/acme/outputs/bw-1/');
  });
});

describe('the platform layout', () => {
  it('names claims and their done records under _batchwire/claims/{scope}/', () => {
    expect(claimObjectName('results', 'id-1')).toBe('_batchwire/claims/results/id-1.json');
    expect(claimDoneObjectName('results', 'id-1', 'published')).toBe(
      '_batchwire/claims/results/id-1.published.json',
    );
    expect(claimObjectName('schedule', 'k')).toBe('_batchwire/claims/schedule/k.json');
    expect(claimDoneObjectName('schedule', 'k', 'started')).toBe('_batchwire/claims/schedule/k.started.json');
  });

  it('puts flow outputs under the client, or _flows for a product-wide flow', () => {
    expect(flowOutputPrefix('p', 'acme', 'train', 'r1')).toBe('p/acme/flows/train/r1/');
    expect(flowOutputPrefix('p', null, 'metadata', 'r1')).toBe('p/_flows/flows/metadata/r1/');
  });

  it('names an upload so that parseObjectName reads it back', () => {
    const name = inputObjectName('p', 'acme', 'dir/a.jsonl');
    expect(name).toBe('p/acme/inputs/dir/a.jsonl');
    expect(parseObjectName(name)).toEqual({
      kind: 'input',
      product: 'p',
      client: 'acme',
      path: 'dir/a.jsonl',
    });
  });
});
