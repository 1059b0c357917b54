import { createServer as createHttpServer } from 'node:http';
import { createServer as createNetServer, type Socket } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import type protobuf from 'protobufjs';
import { createRestTranscoder, type HttpRule, type TranscodedService } from './rest-transcoder.js';

/** A local Google API on one loopback port: gRPC for the gRPC clients, HTTP/JSON for REST ones. */
export interface LocalApiServer {
  /** Registers a service on both protocols; call before `listen`. */
  addService(
    name: string,
    definition: grpc.ServiceDefinition,
    implementation: grpc.UntypedServiceImplementation,
  ): void;
  /** Binds 127.0.0.1 (port 0 picks a free one) and resolves with the port. */
  listen(port?: number): Promise<number>;
  /** Stops both protocols; calls in flight get up to `graceMs` to finish. */
  close(graceMs?: number): Promise<void>;
}

/** The HTTP/2 client preface every gRPC connection opens with (RFC 9113 §3.4). */
const HTTP2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');

/**
 * One port, two protocols, as Google's endpoints (`batch.googleapis.com:443`) answer both: a
 * connection whose first bytes are the HTTP/2 preface goes to the gRPC server (plaintext
 * HTTP/2, as `grpc.credentials.createInsecure()` speaks it), any other to an HTTP/1.1 server
 * that transcodes REST calls with the protos' `google.api.http` rules. So `BATCH_EMULATOR_HOST`
 * and gcloud's `api_endpoint_overrides/batch` name the same address. (HTTP/1.1 requests never
 * start with "PRI": it is not a method.)
 *
 * @example
 * const api = createLocalApiServer(loadProtoRoot('@google-cloud/batch', files));
 * api.addService('google.cloud.batch.v1.BatchService', definition.service, handlers);
 * const port = await api.listen(0);
 */
export function createLocalApiServer(root: protobuf.Root, httpRules: HttpRule[] = []): LocalApiServer {
  const grpcServer = new grpc.Server();
  const services: TranscodedService[] = [];
  const sockets = new Set<Socket>();
  let injector: ReturnType<grpc.Server['createConnectionInjector']> | undefined;
  const http = createHttpServer();
  const tcp = createNetServer((socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    // A peer that resets the connection must not take the service down: without a listener,
    // a socket 'error' event throws.
    socket.on('error', () => socket.destroy());
    let seen = Buffer.alloc(0);
    const sniff = (chunk: Buffer) => {
      seen = Buffer.concat([seen, chunk]);
      const compared = Math.min(seen.length, HTTP2_PREFACE.length);
      const isHttp2 = seen.subarray(0, compared).equals(HTTP2_PREFACE.subarray(0, compared));
      // Wait until the bytes seen so far tell one protocol from the other.
      if (isHttp2 && compared < HTTP2_PREFACE.length) return;
      socket.off('data', sniff);
      socket.pause();
      // Both servers read what was already read from the stream's buffer before the socket's
      // own data (node's http2 session feeds it to nghttp2, the HTTP/1 parser reads it).
      socket.unshift(seen);
      if (isHttp2) {
        injector?.injectConnection(socket);
      } else {
        http.emit('connection', socket);
        socket.resume();
      }
    };
    socket.on('data', sniff);
  });

  return {
    addService(name, definition, implementation) {
      grpcServer.addService(definition, implementation);
      services.push({ name, definition, implementation });
    },
    async listen(port = 0) {
      injector = grpcServer.createConnectionInjector(grpc.ServerCredentials.createInsecure());
      http.on('request', createRestTranscoder({ root, services, httpRules }));
      await new Promise<void>((resolve, reject) => {
        tcp.once('error', reject);
        tcp.listen(port, '127.0.0.1', () => {
          tcp.off('error', reject);
          resolve();
        });
      });
      const address = tcp.address();
      if (!address || typeof address === 'string') throw new Error('the API server has no TCP address');
      return address.port;
    },
    async close(graceMs = 2_000) {
      const closed = new Promise<void>((resolve) => tcp.close(() => resolve()));
      http.closeIdleConnections();
      await new Promise<void>((resolve) => {
        const force = setTimeout(() => {
          grpcServer.forceShutdown();
          resolve();
        }, graceMs);
        force.unref();
        grpcServer.tryShutdown(() => {
          clearTimeout(force);
          resolve();
        });
      });
      injector?.destroy();
      for (const socket of sockets) socket.destroy();
      await closed;
    },
  };
}
