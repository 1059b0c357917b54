import * as grpc from '@grpc/grpc-js';
import { grpcError } from '../grpc/protos.js';
import { millis, type Timestamp } from '../grpc/timestamp.js';
import type { JobMessage } from './types.js';

/**
 * Batch's ListJobs filter, the subset of AIP-160 (https://google.aip.dev/160) that `gcloud
 * batch jobs list --filter` and the console send: clauses joined by AND, each
 * `field OP value` with OP one of `= != : < <= > >=`, the value quoted or bare. Fields:
 * `name`, `uid`, `status.state` (or `state`), `labels.KEY`, and `create_time` / `update_time`
 * (or their camelCase names) compared as instants, the value in RFC 3339, e.g.
 * `create_time>"2026-01-01T00:00:00Z"`. Anything else is INVALID_ARGUMENT naming the clause.
 */
export function compileJobFilter(filter: string): (job: JobMessage) => boolean {
  const trimmed = filter.trim();
  if (!trimmed) return () => true;
  const tests = trimmed.split(/\s+AND\s+/i).map((clause) => compileClause(clause.trim()));
  return (job) => tests.every((test) => test(job));
}

const invalid = (message: string) => grpcError(grpc.status.INVALID_ARGUMENT, message);

const CLAUSE = /^([a-zA-Z_.]+(?:\."[^"]+")?)\s*(<=|>=|!=|=|:|<|>)\s*(?:"([^"]*)"|(\S+))$/;

function compileClause(clause: string): (job: JobMessage) => boolean {
  const match = CLAUSE.exec(clause);
  if (!match) throw invalid(`unsupported filter clause: ${clause}`);
  const [, field = '', op = '=', quoted, bare] = match;
  const value = quoted ?? bare ?? '';

  if (/^(create_time|createTime|update_time|updateTime)$/.test(field)) {
    const wanted = Date.parse(value);
    if (Number.isNaN(wanted)) {
      throw invalid(`filter clause ${clause}: "${value}" is not an RFC 3339 timestamp`);
    }
    if (op === ':') throw invalid(`filter clause ${clause}: ":" does not apply to a timestamp`);
    const read = field.startsWith('create') ? 'create_time' : 'update_time';
    return (job) => {
      const actual = millis((job as unknown as Record<string, Timestamp | undefined>)[read]);
      if (actual === undefined) return op === '!=';
      return compare(actual, op, wanted);
    };
  }

  const read = textField(field);
  if (!read) throw invalid(`unsupported filter field: ${field}`);
  return (job) => {
    const actual = read(job);
    switch (op) {
      case '=':
        return actual === value;
      case '!=':
        return actual !== value;
      case ':':
        return actual !== undefined && (value === '*' || actual.includes(value));
      default:
        return actual !== undefined && compare(actual, op, value);
    }
  };
}

function textField(field: string): ((job: JobMessage) => string | undefined) | undefined {
  if (field === 'name') return (job) => job.name;
  if (field === 'uid') return (job) => job.uid;
  if (field === 'status.state' || field === 'state') return (job) => job.status.state;
  if (field.startsWith('labels.')) {
    const key = field.slice('labels.'.length).replace(/^"|"$/g, '');
    return (job) => job.labels?.[key];
  }
  return undefined;
}

function compare<T extends number | string>(actual: T, op: string, wanted: T): boolean {
  switch (op) {
    case '<':
      return actual < wanted;
    case '<=':
      return actual <= wanted;
    case '>':
      return actual > wanted;
    case '>=':
      return actual >= wanted;
    case '!=':
      return actual !== wanted;
    default:
      return actual === wanted;
  }
}
