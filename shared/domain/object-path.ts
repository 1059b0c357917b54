/**
 * The object layout of the platform's bucket, the contract clients upload against:
 *
 * ```
 * {product}/{client}/inputs/<path>            a client's upload: the only thing onUpload acts on
 * {product}/{client}/outputs/<job-id>/…       what a job writes (same bucket: never an input)
 * _batchwire/…                                the platform's own bookkeeping (rejection records, claims)
 * ```
 *
 * Parsing here is deliberately lenient: it only finds the shape, so that a name under a known
 * product's `inputs/` with a bad path can be *rejected* with a reason instead of silently ignored.
 * Validation of the path itself lives in `upload.ts`.
 */

/** Everything the platform writes for itself lives under this prefix; never an input. */
export const BOOKKEEPING_PREFIX = '_batchwire/';

/** Where rejection records are written: `_batchwire/rejections/{product}/{client}/<key>.json`. */
export const REJECTIONS_PREFIX = `${BOOKKEEPING_PREFIX}rejections/`;

/**
 * Where the once-only claims live: `_batchwire/claims/{scope}/<key>.json` (the claim) and
 * `<key>.{done}.json` (what its holder finished). See claims.ts.
 */
export const CLAIMS_PREFIX = `${BOOKKEEPING_PREFIX}claims/`;

/** What a claim makes happen once: a result published (`results`), a flow tick started (`schedule`). */
export type ClaimScope = 'results' | 'schedule';

/** The claim object of `key` in `scope`, created with `ifGenerationMatch: 0` by the first attempt. */
export function claimObjectName(scope: ClaimScope, key: string): string {
  return `${CLAIMS_PREFIX}${scope}/${key}.json`;
}

/** The record its holder writes once the claimed work is done (`published`, `started`). */
export function claimDoneObjectName(scope: ClaimScope, key: string, done: string): string {
  return `${CLAIMS_PREFIX}${scope}/${key}.${done}.json`;
}

/** The segment that marks a client's uploads. */
export const INPUTS_SEGMENT = 'inputs';

/** The segment under which jobs write their results. */
export const OUTPUTS_SEGMENT = 'outputs';

/** An object name in the shape `{product}/{client}/inputs/<path>` (not yet validated). */
export interface InputPath {
  kind: 'input';
  product: string;
  client: string;
  /** What follows `inputs/`: may be empty or unsafe; `upload.ts` validates it. */
  path: string;
}

/** Why a name is not an input; each of these is ignored by onUpload. */
export type NotInputReason = 'bookkeeping' | 'not-inputs';

export interface NotInputPath {
  kind: 'not-input';
  reason: NotInputReason;
}

export type ParsedObjectName = InputPath | NotInputPath;

/**
 * Finds the `{product}/{client}/inputs/<path>` shape in an object name. Does not consult the
 * config (the caller decides whether the product and client are known).
 *
 * - `_batchwire/…` → bookkeeping;
 * - anything whose third segment is not `inputs` (outputs, models, other prefixes) → not-inputs.
 *
 * Folder placeholders (zero-byte names ending in `/`) need the size to tell apart, so the
 * caller recognises them.
 *
 * @example
 * parseObjectName('mlops-template/acme/inputs/batch-1.jsonl')
 * // { kind: 'input', product: 'mlops-template', client: 'acme', path: 'batch-1.jsonl' }
 */
export function parseObjectName(name: string): ParsedObjectName {
  if (name.startsWith(BOOKKEEPING_PREFIX)) return { kind: 'not-input', reason: 'bookkeeping' };
  const segments = name.split('/');
  if (segments.length < 4 || segments[2] !== INPUTS_SEGMENT) {
    return { kind: 'not-input', reason: 'not-inputs' };
  }
  return {
    kind: 'input',
    product: segments[0] as string,
    client: segments[1] as string,
    path: segments.slice(3).join('/'),
  };
}

/** `gs://bucket/name`: the form the task contract and rejection records use. */
export function objectUri(bucket: string, name: string): string {
  return `gs://${bucket}/${name}`;
}

/** Splits a `gs://bucket/name` URI; the name is everything after the bucket (it may contain `/`). */
export function parseObjectUri(uri: string): { bucket: string; name: string } | undefined {
  const match = /^gs:\/\/([^/]+)\/(.*)$/s.exec(uri);
  if (!match) return undefined;
  return { bucket: match[1] as string, name: match[2] as string };
}

/** The prefix a job writes its results under: `{product}/{client}/outputs/{jobId}/`. */
export function outputPrefix(product: string, client: string, jobId: string): string {
  return `${product}/${client}/${OUTPUTS_SEGMENT}/${jobId}/`;
}

/** Where a product-wide flow (no client) writes: the segment that stands in for the client. */
export const PRODUCT_FLOWS_SEGMENT = '_flows';

/**
 * The prefix a flow run writes its results under:
 * `{product}/{client | _flows}/flows/{flow}/{runId}/`.
 */
export function flowOutputPrefix(
  product: string,
  client: string | null,
  flow: string,
  runId: string,
): string {
  return `${product}/${client ?? PRODUCT_FLOWS_SEGMENT}/flows/${flow}/${runId}/`;
}

/**
 * The object a client uploads for inference: `{product}/{client}/inputs/{path}` (the CLI's
 * `upload`, the demo and the local platform build names with it).
 */
export function inputObjectName(product: string, client: string, path: string): string {
  return `${product}/${client}/${INPUTS_SEGMENT}/${path}`;
}
