import { describe, expect, it } from 'vitest';
import { InputError } from '#reference-tasks/lib/errors.js';
import {
  BUILTIN_MODEL_VERSION,
  type ModelArtifact,
  modelFromArtifact,
  parseModelArtifact,
  tokenise,
  upperCaseModel,
} from '#reference-tasks/lib/model.js';

const artifact: ModelArtifact = {
  kind: 'batchwire.reference-model',
  schemaVersion: 1,
  version: 'v-0123456789ab',
  product: 'mlops-template',
  client: 'acme',
  normalise: { trim: true, collapseWhitespace: true },
  vocabulary: [
    { token: 'HELLO', count: 3 },
    { token: 'WORLD', count: 2 },
  ],
  stats: { objects: 1, records: 3, rejects: 0, tokens: 5, distinctTokens: 2 },
  trainedOn: { prefix: 'gs://b/mlops-template/acme/inputs/', objects: [] },
};

describe('upperCaseModel', () => {
  it('upper-cases every string, nested ones included, and leaves keys and other values alone', () => {
    const record = {
      text: 'héllo wörld',
      n: 3,
      ok: true,
      none: null,
      tags: ['a', 1],
      inner: { Key: 'straße' },
    };
    expect(upperCaseModel().predict(record)).toEqual({
      text: 'HÉLLO WÖRLD',
      n: 3,
      ok: true,
      none: null,
      tags: ['A', 1],
      inner: { Key: 'STRASSE' },
    });
    expect(upperCaseModel().version).toBe(BUILTIN_MODEL_VERSION);
  });

  it('does not modify its input', () => {
    const record = { text: 'a' };
    upperCaseModel().predict(record);
    expect(record).toEqual({ text: 'a' });
  });
});

describe('modelFromArtifact', () => {
  it('normalises whitespace as the artifact says, upper-cases, and scores known tokens', () => {
    const model = modelFromArtifact(artifact, 'gs://b/m.json');
    expect(model.version).toBe('v-0123456789ab');
    expect(model.predict({ text: '  hello   there\tworld ', id: 7 })).toEqual({
      text: 'HELLO THERE WORLD',
      id: 7,
      knownTokenRatio: 0.6667,
    });
    expect(model.predict({ id: 7 })).toEqual({ id: 7, knownTokenRatio: null });
  });

  it('keeps whitespace when the artifact does not ask for normalisation', () => {
    const model = modelFromArtifact({ ...artifact, normalise: { trim: false, collapseWhitespace: false } });
    expect(model.predict({ text: ' hello  x ' })).toMatchObject({ text: ' HELLO  X ' });
  });
});

describe('tokenise', () => {
  it('splits on anything but letters and digits, upper-casing', () => {
    expect(tokenise("it's 2 fast, Ünïcode-ok!")).toEqual(['IT', 'S', '2', 'FAST', 'ÜNÏCODE', 'OK']);
  });
});

describe('parseModelArtifact', () => {
  it('accepts the training artifact and refuses anything else', () => {
    expect(parseModelArtifact(JSON.parse(JSON.stringify(artifact)), 'gs://b/m')).toEqual(artifact);
    expect(() => parseModelArtifact({ kind: 'other' }, 'gs://b/m')).toThrow(InputError);
    expect(() => parseModelArtifact(null, 'gs://b/m')).toThrow(/not a batchwire.reference-model/);
  });
});
