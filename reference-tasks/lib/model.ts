import { InputError } from './errors.js';
import type { JsonRecord } from './records.js';

/** The model function the inference task streams every record through. */
export interface Model {
  /** Stamped into every output record as `modelVersion`. */
  readonly version: string;
  /** Where the artifact came from, or undefined for the built-in model. */
  readonly uri?: string;
  predict(record: JsonRecord): JsonRecord;
}

/** The version stamped when no trained artifact exists: the seed template's upper-case job. */
export const BUILTIN_MODEL_VERSION = 'builtin-upper-case';

/** The artifact the training task writes to `{product}/{client}/models/<version>/model.json`. */
export interface ModelArtifact {
  kind: 'batchwire.reference-model';
  schemaVersion: 1;
  version: string;
  product: string;
  client: string;
  /** How string fields are normalised before upper-casing. */
  normalise: { trim: boolean; collapseWhitespace: boolean };
  /** The most frequent tokens of the training data, most frequent first (ties by token). */
  vocabulary: Array<{ token: string; count: number }>;
  stats: { objects: number; records: number; rejects: number; tokens: number; distinctTokens: number };
  trainedOn: { prefix: string; objects: Array<{ name: string; generation: string; size: number }> };
}

/**
 * Upper-cases every string in a value, recursing into objects and arrays (keys are kept).
 * `String.prototype.toUpperCase` is locale-independent, so the output is the same on every
 * machine.
 */
export function upperCaseStrings(
  value: unknown,
  normalise: (text: string) => string = (text) => text,
): unknown {
  if (typeof value === 'string') return normalise(value).toUpperCase();
  if (Array.isArray(value)) return value.map((item) => upperCaseStrings(item, normalise));
  if (value !== null && typeof value === 'object') {
    const out: JsonRecord = {};
    for (const [key, item] of Object.entries(value)) out[key] = upperCaseStrings(item, normalise);
    return out;
  }
  return value;
}

/** The plain model: every string field upper-cased, nothing else changed. */
export function upperCaseModel(): Model {
  return {
    version: BUILTIN_MODEL_VERSION,
    predict: (record) => upperCaseStrings(record) as JsonRecord,
  };
}

/** Splits text into upper-cased word tokens (letters and digits of any script). */
export function tokenise(text: string): string[] {
  return text
    .toUpperCase()
    .split(/[^\p{L}\p{N}]+/u)
    .filter((token) => token !== '');
}

/** Every string inside a value, depth first in key order. */
export function stringsOf(value: unknown, out: string[] = []): string[] {
  if (typeof value === 'string') out.push(value);
  else if (Array.isArray(value)) for (const item of value) stringsOf(item, out);
  else if (value !== null && typeof value === 'object')
    for (const item of Object.values(value)) stringsOf(item, out);
  return out;
}

/**
 * The trained model: strings normalised as the artifact says and upper-cased, plus
 * `knownTokenRatio`, the share of the record's tokens found in the trained vocabulary
 * (4 decimals; null for a record without tokens).
 */
export function modelFromArtifact(artifact: ModelArtifact, uri?: string): Model {
  const vocabulary = new Set(artifact.vocabulary.map((entry) => entry.token));
  const { trim, collapseWhitespace } = artifact.normalise;
  const normalise = (text: string) => {
    let out = collapseWhitespace ? text.replace(/\s+/gu, ' ') : text;
    if (trim) out = out.trim();
    return out;
  };
  return {
    version: artifact.version,
    ...(uri === undefined ? {} : { uri }),
    predict(record) {
      const out = upperCaseStrings(record, normalise) as JsonRecord;
      let known = 0;
      let total = 0;
      for (const text of stringsOf(out)) {
        for (const token of tokenise(text)) {
          total++;
          if (vocabulary.has(token)) known++;
        }
      }
      out.knownTokenRatio = total === 0 ? null : Math.round((known / total) * 10_000) / 10_000;
      return out;
    },
  };
}

/** Checks that parsed JSON is a model artifact this task understands. */
export function parseModelArtifact(json: unknown, uri: string): ModelArtifact {
  const artifact = json as Partial<ModelArtifact> | null;
  const valid =
    artifact !== null &&
    typeof artifact === 'object' &&
    artifact.kind === 'batchwire.reference-model' &&
    artifact.schemaVersion === 1 &&
    typeof artifact.version === 'string' &&
    artifact.version !== '' &&
    typeof artifact.normalise === 'object' &&
    artifact.normalise !== null &&
    Array.isArray(artifact.vocabulary) &&
    artifact.vocabulary.every((entry) => typeof entry?.token === 'string');
  if (!valid) throw new InputError(`${uri} is not a batchwire.reference-model artifact (schemaVersion 1)`);
  return artifact as ModelArtifact;
}
