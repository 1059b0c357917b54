import * as grpc from '@grpc/grpc-js';
import { paginate } from './paging.js';
import { grpcError } from './protos.js';

/** `google.cloud.location.Location` as proto-loader (keepCase) encodes it. */
interface LocationMessage {
  name: string;
  location_id: string;
  display_name: string;
  labels: Record<string, string>;
}

const PROJECT = /^projects\/([^/]+)$/;
const LOCATION = /^projects\/([^/]+)\/locations\/([a-z0-9-]+)$/;

function location(project: string, id: string): LocationMessage {
  return { name: `projects/${project}/locations/${id}`, location_id: id, display_name: id, labels: {} };
}

/**
 * `google.cloud.location.Locations` for a local service: it runs anywhere, so every location
 * exists (GetLocation answers any well-formed name) and ListLocations lists the ones the
 * service knows of — those configured and those its resources live in. `filter` is not
 * supported: a non-empty one is INVALID_ARGUMENT rather than ignored.
 */
export function createLocations(known: () => Iterable<string>) {
  return {
    listLocations(request: { name: string; filter?: string; page_size?: number; page_token?: string }) {
      const project = PROJECT.exec(request.name ?? '')?.[1];
      if (!project)
        throw grpcError(
          grpc.status.INVALID_ARGUMENT,
          `name must be projects/{project}, got "${request.name}"`,
        );
      if (request.filter?.trim()) {
        throw grpcError(
          grpc.status.INVALID_ARGUMENT,
          `location filters are not supported locally: ${request.filter}`,
        );
      }
      const ids = [...new Set(known())].sort();
      const { page, next_page_token } = paginate(
        ids.map((id) => location(project, id)),
        request,
        { scope: request.name },
      );
      return { locations: page, next_page_token };
    },
    getLocation(request: { name: string }): LocationMessage {
      const match = LOCATION.exec(request.name ?? '');
      if (!match) {
        throw grpcError(
          grpc.status.INVALID_ARGUMENT,
          `name must be projects/{project}/locations/{location}, got "${request.name}"`,
        );
      }
      return location(match[1] as string, match[2] as string);
    },
  };
}
