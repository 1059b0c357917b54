/**
 * Objects made from other objects: copy (`copyTo`), rewrite (`rewriteTo`, done in one call) and
 * compose (up to 32 sources, at most 1,024 components in all).
 */
import { validateName } from '../catalog.js';
import { intParam, preconditions, readJson, sendResource } from '../http.js';
import {
  applyObjectFields,
  invalidArgument,
  MUTABLE_OBJECT_KEYS,
  type MutableObjectFields,
  objectResource,
  preconditionFailed,
} from '../resources.js';
import { writeBlob } from '../store.js';
import type { StorageCall, StorageContext } from './context.js';

/** `b/{bucket}/o/{object}/copyTo|rewriteTo/b/{destinationBucket}/o/{destination}` */
type CopyCall = StorageCall<{
  bucket: string;
  object: string;
  destinationBucket: string;
  destination: string;
}>;

/** Objects.copy: answers the new object. */
export function copyObject(context: StorageContext, call: CopyCall): Promise<void> {
  return copy(context, call, false);
}

/** Objects.rewrite: copies in one call, so the answer is always `done: true`. */
export function rewriteObject(context: StorageContext, call: CopyCall): Promise<void> {
  return copy(context, call, true);
}

async function copy(
  context: StorageContext,
  { req, res, query, params }: CopyCall,
  rewrite: boolean,
): Promise<void> {
  const { catalog } = context;
  const body = await readJson(req);
  const source = catalog.getObject(params.bucket, params.object, intParam(query, 'sourceGeneration'));
  catalog.checkPreconditions(source, preconditions(query, 'ifSource'));
  validateName(params.destination);
  const destinationConditions = preconditions(query);
  catalog.checkPreconditions(
    catalog.current(params.destinationBucket, params.destination),
    destinationConditions,
  );
  // As in GCS: metadata in the body replaces the source's; without any, the source's is copied.
  let fields: MutableObjectFields;
  if (MUTABLE_OBJECT_KEYS.some((key) => key in body)) {
    fields = {};
    applyObjectFields(fields, body);
    fields.contentType ??= source.fields.contentType;
  } else {
    fields = structuredClone(source.fields);
  }
  const blob = await writeBlob(catalog.backend, async (writer) => {
    for await (const chunk of await catalog.read(source, 0, source.size - 1)) await writer.write(chunk);
  });
  const record = await catalog.finalize(
    {
      bucket: params.destinationBucket,
      name: params.destination,
      fields,
      preconditions: destinationConditions,
      ...(source.componentCount !== undefined ? { componentCount: source.componentCount } : {}),
    },
    blob,
  );
  const resource = objectResource(record, context.baseUrl());
  if (!rewrite) {
    sendResource(res, resource);
    return;
  }
  sendResource(res, {
    kind: 'storage#rewriteResponse',
    totalBytesRewritten: String(record.size),
    objectSize: String(record.size),
    done: true,
    resource,
  });
}

/** Objects.compose: the sources' bytes in order, under the destination's name. */
export async function composeObject(
  context: StorageContext,
  { req, res, query, params }: StorageCall<{ bucket: string; object: string }>,
): Promise<void> {
  const { catalog } = context;
  const { bucket, object: name } = params;
  const body = await readJson(req);
  const sourceObjects = body.sourceObjects;
  if (!Array.isArray(sourceObjects) || sourceObjects.length === 0 || sourceObjects.length > 32) {
    throw invalidArgument('The number of source components provided must be between 1 and 32.');
  }
  const sources = sourceObjects.map((entry: unknown) => {
    const source = entry as {
      name?: unknown;
      generation?: unknown;
      objectPreconditions?: { ifGenerationMatch?: unknown } | null;
    };
    if (typeof source?.name !== 'string') throw invalidArgument('Each source object needs a name.');
    // Python's client sends `"generation": null` for "the live version".
    const generation =
      source.generation === undefined || source.generation === null ? undefined : Number(source.generation);
    if (generation !== undefined && !Number.isSafeInteger(generation)) {
      throw invalidArgument(`Invalid generation for source object ${source.name}.`);
    }
    const record = catalog.getObject(bucket, source.name, generation);
    const expected = source.objectPreconditions?.ifGenerationMatch;
    if (expected !== undefined && expected !== null && Number(expected) !== record.generation) {
      throw preconditionFailed();
    }
    return record;
  });
  validateName(name);
  const conditions = preconditions(query);
  catalog.checkPreconditions(catalog.current(bucket, name), conditions);
  const fields: MutableObjectFields = {};
  const destination = body.destination;
  if (destination && typeof destination === 'object')
    applyObjectFields(fields, destination as Record<string, unknown>);
  fields.contentType ??= sources[0]?.fields.contentType ?? 'application/octet-stream';
  const componentCount = sources.reduce((sum, source) => sum + (source.componentCount ?? 1), 0);
  if (componentCount > 1024) throw invalidArgument('The composite object would exceed 1024 components.');
  const blob = await writeBlob(catalog.backend, async (writer) => {
    for (const source of sources) {
      for await (const chunk of await catalog.read(source, 0, source.size - 1)) await writer.write(chunk);
    }
  });
  const record = await catalog.finalize(
    { bucket, name, fields, preconditions: conditions, componentCount },
    blob,
  );
  sendResource(res, objectResource(record, context.baseUrl()));
}
