// Real clients for API tests: @grpc/grpc-js (what internal Node services use), Connect
// (connect-node, over HTTP/1.1 or HTTP/2) and REST (fetch).
import * as grpc from "@grpc/grpc-js";
import { fromBinary, toBinary, type DescMessage, type DescMethod, type DescService, type MessageShape } from "@bufbuild/protobuf";
import { create } from "@bufbuild/protobuf";
import { ConnectError, createClient, type Client } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";

/** A Connect-protocol client (JSON by default) over HTTP/1.1. */
export function connectClient<S extends DescService>(service: S, baseUrl: string, opts: { binary?: boolean; http2?: boolean } = {}): Client<S> {
  return createClient(service, createConnectTransport({ baseUrl, httpVersion: opts.http2 ? "2" : "1.1", useBinaryFormat: opts.binary ?? false }));
}

/** A connect-node gRPC client over h2c. */
export function connectGrpcClient<S extends DescService>(service: S, baseUrl: string): Client<S> {
  return createClient(service, createGrpcTransport({ baseUrl }));
}

/** A connect-node gRPC-Web client over HTTP/1.1. */
export function grpcWebClient<S extends DescService>(service: S, baseUrl: string): Client<S> {
  return createClient(service, createGrpcWebTransport({ baseUrl, httpVersion: "1.1" }));
}

export interface GrpcResult {
  message?: any;
  error?: grpc.ServiceError;
  /** The response's initial metadata (headers), when the server sent any. */
  header?: grpc.Metadata;
  /** The trailing metadata (trailers) that came with the status. */
  trailer?: grpc.Metadata;
}

/** A method as @grpc/grpc-js's makeGenericClientConstructor takes it, messages in their binary form. */
export function grpcMethodDefinition(m: DescMethod): grpc.MethodDefinition<MessageShape<DescMessage>, MessageShape<DescMessage>> {
  return {
    path: `/${m.parent.typeName}/${m.name}`,
    requestStream: m.methodKind === "client_streaming" || m.methodKind === "bidi_streaming",
    responseStream: m.methodKind === "server_streaming" || m.methodKind === "bidi_streaming",
    requestSerialize: (value) => Buffer.from(toBinary(m.input, value)),
    requestDeserialize: (bytes) => fromBinary(m.input, bytes),
    responseSerialize: (value) => Buffer.from(toBinary(m.output, value)),
    responseDeserialize: (bytes) => fromBinary(m.output, bytes),
  };
}

/**
 * A @grpc/grpc-js client for one service, built from the generated descriptors (no
 * proto-loader): `call("GetSession", {...}, {authorization: "Bearer ..."})` resolves with the
 * response message or the gRPC error (never throws for an RPC error).
 */
export class GrpcJsClient<S extends DescService> {
  private readonly client: grpc.Client;
  constructor(
    private readonly service: S,
    address: string,
  ) {
    const definition: Record<string, grpc.MethodDefinition<any, any>> = {};
    for (const m of service.methods) definition[m.name] = grpcMethodDefinition(m);
    const Ctor = grpc.makeGenericClientConstructor(definition, service.typeName);
    this.client = new Ctor(address.replace(/^https?:\/\//, ""), grpc.credentials.createInsecure());
  }

  /**
   * Calls a method by its proto name ("GetSession"). Resolves with the response message
   * (typed loosely: tests assert its fields) or the gRPC error; never throws for an RPC error.
   */
  call(methodName: string, input: Record<string, unknown> = {}, metadata: Record<string, string> = {}): Promise<GrpcResult> {
    const method = this.service.methods.find((m) => m.name === methodName);
    if (!method) throw new Error(`no method ${methodName} on ${this.service.typeName}`);
    const md = new grpc.Metadata();
    for (const [k, v] of Object.entries(metadata)) md.set(k, v);
    const fn = (this.client as unknown as Record<string, Function>)[method.name].bind(this.client);
    return new Promise((resolve) => {
      let header: grpc.Metadata | undefined;
      let result: GrpcResult = {};
      // grpc-js calls back with the answer, then emits the status (with the trailers) at once.
      const call: grpc.ClientUnaryCall = fn(create(method.input, input as never), md, (err: grpc.ServiceError | null, res: any) => {
        result = err ? { error: err } : { message: res };
      });
      call.on("metadata", (m: grpc.Metadata) => (header = m));
      call.on("status", (s: grpc.StatusObject) => resolve({ ...result, header, trailer: s.metadata }));
    });
  }

  close(): void {
    this.client.close();
  }
}

export interface RestResponse {
  status: number;
  headers: Headers;
  /** Parsed JSON when the body is JSON, otherwise the text. */
  body: any;
  text: string;
}

/** A REST call with fetch; `json` is sent as the body with content-type application/json. */
export async function rest(
  baseUrl: string,
  method: string,
  path: string,
  opts: { json?: unknown; headers?: Record<string, string>; body?: string } = {},
): Promise<RestResponse> {
  const headers: Record<string, string> = { ...opts.headers };
  let body: string | undefined = opts.body;
  if (opts.json !== undefined) {
    body = JSON.stringify(opts.json);
    headers["content-type"] ??= "application/json";
  }
  const res = await fetch(baseUrl + path, { method, headers, body });
  const text = await res.text();
  let parsed: unknown = text;
  if ((res.headers.get("content-type") ?? "").includes("json") && text.length > 0) parsed = JSON.parse(text);
  return { status: res.status, headers: res.headers, body: parsed, text };
}

/** The ConnectError a Connect call rejects with; fails the test when it resolves. */
export async function connectError(call: Promise<unknown>): Promise<ConnectError> {
  try {
    await call;
  } catch (e) {
    return ConnectError.from(e);
  }
  throw new Error("expected the call to fail");
}

/** `Authorization: Basic` for login:password (RFC 7617, UTF-8), as a header object. */
export const basic = (login: string, password: string) => ({
  authorization: `Basic ${Buffer.from(`${login}:${password}`, "utf8").toString("base64")}`,
});

/** `Authorization: Bearer <token>`, as a header object. */
export const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
