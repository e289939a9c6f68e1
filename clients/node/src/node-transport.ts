// Tessera's transports over connect-node's HTTP clients (the transport's Connections): its
// gRPC, Connect and gRPC-Web transports with their defaults, gRPC-Web's answers read only when
// they are gRPC-Web.
import { Code, ConnectError, type Interceptor, type Transport } from "@connectrpc/connect";
import { compressionBrotli, compressionGzip } from "@connectrpc/connect-node";
import type { UniversalClientFn } from "@connectrpc/connect/protocol";
import { createTransport as createConnectTransport } from "@connectrpc/connect/protocol-connect";
import { createTransport as createGrpcTransport } from "@connectrpc/connect/protocol-grpc";
import { createTransport as createGrpcWebTransport } from "@connectrpc/connect/protocol-grpc-web";

export interface NodeTransportOptions {
  baseUrl: string;
  interceptors: Interceptor[];
  useBinaryFormat: boolean;
  useHttpGet: boolean;
  readMaxBytes: number;
  defaultTimeoutMs?: number | undefined;
}

/**
 * connect-node's createGrpcTransport, createConnectTransport or createGrpcWebTransport (with
 * their defaults: gzip and brotli accepted, nothing compressed, no bound on what is sent), over
 * `httpClient`. gRPC-Web's answers of HTTP 2xx that are not gRPC-Web (text/html: a proxy's page,
 * a web server's single-page-app fallback) fail UNKNOWN, `unsupported content type text/html`,
 * naming the content type, as gRPC clients fail them (grpc-go; connect-es's own gRPC transport)
 * and as connect-es's Connect and gRPC transports here do. connect-es's gRPC-Web transport reads
 * any 2xx answer as gRPC-Web frames: a page's first bytes were taken for a message's length
 * (RESOURCE_EXHAUSTED, "message size 560230243", the "!doc" of "<!doctype").
 */
export function createNodeTransport(protocol: "grpc" | "connect" | "grpc-web", options: NodeTransportOptions, httpClient: UniversalClientFn): Transport {
  const defaults = {
    ...options,
    acceptCompression: [compressionGzip, compressionBrotli],
    sendCompression: null,
    compressMinBytes: 1024,
    writeMaxBytes: 0xffffffff,
  };
  switch (protocol) {
    case "grpc":
      return createGrpcTransport({ ...defaults, httpClient });
    case "connect":
      return createConnectTransport({ ...defaults, httpClient });
    case "grpc-web":
      return createGrpcWebTransport({ ...defaults, httpClient: gRPCWebAnswersOnly(httpClient) });
  }
}

/**
 * A binary gRPC-Web content type: application/grpc-web, with or without a codec (+proto, +json)
 * and parameters. Which codec is connect-es's to check. The text form
 * (application/grpc-web-text: the frames in base64) is not one: the client never asks for it,
 * and connect-es would read the base64 as frames (RESOURCE_EXHAUSTED, "message size 1094795585",
 * the "AAAA" of a frame's first bytes); it is refused as any other content type.
 */
const grpcWebType = /^application\/grpc-web(?:\+[^;\s]+)?(?:\s*;.*)?$/i;

/** `client`, failing a 2xx answer that is not gRPC-Web before its body is read (the call's end closes it). */
function gRPCWebAnswersOnly(client: UniversalClientFn): UniversalClientFn {
  return async (req) => {
    const res = await client(req);
    const type = res.header.get("content-type");
    if (res.status >= 200 && res.status < 300 && !grpcWebType.test(type ?? "")) {
      throw new ConnectError(`unsupported content type ${type}`, Code.Unknown);
    }
    return res;
  };
}
