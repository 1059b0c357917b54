import * as grpc from '@grpc/grpc-js';
import { grpcError } from './protos.js';

/**
 * One page of a list, as AIP-158 (https://google.aip.dev/158) pages: `page_size` 0 means the
 * service's default, a larger one is capped at `max`; the token is opaque to the caller (here
 * the offset, base64url-encoded, bound to the request's `scope` so a token of one list is
 * refused by another). A token that does not decode is INVALID_ARGUMENT.
 */
export function paginate<T>(
  items: T[],
  request: { page_size?: number | null; page_token?: string | null },
  options: { scope: string; defaultSize?: number; max?: number },
): { page: T[]; next_page_token: string } {
  const max = options.max ?? 1000;
  const size = Math.min(
    request.page_size && request.page_size > 0 ? request.page_size : (options.defaultSize ?? max),
    max,
  );
  if ((request.page_size ?? 0) < 0)
    throw grpcError(grpc.status.INVALID_ARGUMENT, 'page_size must not be negative');
  let offset = 0;
  if (request.page_token) {
    const [scope, at] = Buffer.from(request.page_token, 'base64url').toString().split('\n');
    offset = Number(at);
    if (scope !== options.scope || !Number.isInteger(offset) || offset < 0) {
      throw grpcError(grpc.status.INVALID_ARGUMENT, `invalid page_token "${request.page_token}"`);
    }
  }
  const page = items.slice(offset, offset + size);
  const next =
    offset + size < items.length
      ? Buffer.from(`${options.scope}\n${offset + size}`).toString('base64url')
      : '';
  return { page, next_page_token: next };
}
