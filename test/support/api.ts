// What every per-API test client shares (test/<api>/api.ts): the three protocols, the Outcome
// a call resolves with whatever the protocol, and one RPC caller for gRPC (@grpc/grpc-js) and
// Connect (connect-node). A test written against an API client reads like the API document —
// a request in the document's JSON terms, the documented answer — and runs over every protocol.
import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import { fromJson, toJson, type DescMessage, type DescMethodUnary, type DescService, type JsonObject, type JsonValue, type MessageInitShape, type MessageShape } from "@bufbuild/protobuf";
import { Code, ConnectError, type Transport } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { GrpcJsClient, type RestResponse } from "./clients.js";
import { connectDetails, grpcStatusDetails, jsonDetails, tesseraDetails, type DetailFacts } from "./error-details.js";

export type Protocol = "grpc" | "connect" | "rest";
export type RpcProtocol = Exclude<Protocol, "rest">;

/** gRPC (@grpc/grpc-js, protobuf binary over h2c), Connect (connect-node, JSON over HTTP/1.1), REST (fetch). */
export const protocols: readonly Protocol[] = ["grpc", "connect", "rest"];
/** The protocols that carry the RPC's own messages (no REST binding in between). */
export const rpcProtocols: readonly RpcProtocol[] = ["grpc", "connect"];

export interface Outcome<T = JsonObject> {
  /** "ok" or the Connect code name in snake_case ("unauthenticated", "invalid_argument", ...). */
  code: string;
  /** The answer in the API document's terms (the JSON names REST writes), whatever the protocol. */
  data?: T;
  /** The error message. */
  message?: string;
  /** REST only: the HTTP status. */
  status?: number;
  /** Response headers (REST, Connect: headers and trailers) or metadata (gRPC: initial and trailing). */
  headers: Headers;
  /** An error's details (google.rpc.ErrorInfo, RetryInfo, BadRequest), however the protocol carries them. */
  details?: DetailFacts;
}

export function codeName(code: Code): string {
  return Code[code].replace(/([a-z])([A-Z])/g, "$1_$2").toLowerCase();
}

/** HTTP status of each Connect code over REST (ARCHITECTURE.md, "The transcoder"). */
export const httpStatus: Record<string, number> = {
  canceled: 499,
  unknown: 500,
  invalid_argument: 400,
  deadline_exceeded: 504,
  not_found: 404,
  already_exists: 409,
  permission_denied: 403,
  resource_exhausted: 429,
  failed_precondition: 400,
  aborted: 409,
  out_of_range: 400,
  unimplemented: 501,
  internal: 500,
  unavailable: 503,
  data_loss: 500,
  unauthenticated: 401,
};

/**
 * Asserts the outcome's code (over REST, also the HTTP status it maps to) and, when given, its
 * message (a string must be the exact message, a RegExp must match it) and its ErrorInfo reason.
 */
export function expectCode(outcome: Outcome<unknown>, code: string, message?: RegExp | string, reason?: string): void {
  assert.equal(outcome.code, code, `expected ${code}, got ${outcome.code}: ${outcome.message ?? ""}`);
  if (reason !== undefined) assert.equal(outcome.details?.reason, reason, "ErrorInfo reason");
  if (outcome.status !== undefined && code !== "ok") assert.equal(outcome.status, httpStatus[code], `HTTP status of ${code}`);
  if (typeof message === "string") assert.equal(outcome.message, message);
  else if (message) assert.match(outcome.message ?? "", message);
}

/** A password the policy refuses: 400 WEAK_PASSWORD with `message`, its BadRequest naming `field`. */
export function expectWeakPassword(outcome: Outcome<unknown>, field: string, message: string): void {
  expectFieldRefused(outcome, field, message, "WEAK_PASSWORD");
}

/** A field's value refused: 400 with `message` and `reason` (INVALID_FIELD unless told), its BadRequest naming `field`. */
export function expectFieldRefused(outcome: Outcome<unknown>, field: string, message: string, reason = "INVALID_FIELD"): void {
  expectCode(outcome, "invalid_argument", message, reason);
  assert.deepEqual(outcome.details, tesseraDetails(reason, { [field]: message }));
}

/** Asserts success (over REST with exactly `restStatus`) and returns the answer. */
export function expectOk<T>(outcome: Outcome<T>, restStatus = 200): T {
  assert.equal(outcome.code, "ok", `expected ok, got ${outcome.code}: ${outcome.message ?? ""}`);
  if (outcome.status !== undefined) assert.equal(outcome.status, restStatus, "HTTP status");
  return outcome.data as T;
}

/** `undefined`-valued keys dropped: a request object with optional fields left out. */
export function defined(value: Record<string, unknown>): JsonObject {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as JsonObject;
}

/**
 * A REST answer as an Outcome: a 2xx is "ok" with the JSON body (or the text, or undefined when
 * empty) as data; anything else must be the documented error body `{code, message, details}`
 * (API.md: JSON, `message` always present), its details holding Tessera's ErrorInfo.
 */
export function restOutcome(res: RestResponse): Outcome<any> {
  if (res.status >= 200 && res.status < 300) {
    return { code: "ok", data: res.text === "" ? undefined : res.body, status: res.status, headers: res.headers };
  }
  assert.match(res.headers.get("content-type") ?? "", /^application\/json/, `HTTP ${res.status} error body: ${res.text}`);
  assert.deepEqual(Object.keys(res.body), ["code", "message", "details"], res.text);
  const details = jsonDetails(res.body.details);
  assert.equal(details.domain, "tessera", `an ErrorInfo in ${res.text}`);
  return { code: res.body.code, message: res.body.message, status: res.status, headers: res.headers, details };
}

/** Response metadata (grpc-js) as one Headers object; binary (-bin) entries are left out. */
function metadataHeaders(...mds: Array<grpc.Metadata | undefined>): Headers {
  const headers = new Headers();
  for (const md of mds) {
    for (const [k, values] of Object.entries(md?.toJSON() ?? {})) {
      if (k.endsWith("-bin")) continue;
      for (const v of values) headers.append(k, String(v));
    }
  }
  return headers;
}

export interface RpcOutcome<O extends DescMessage> extends Outcome<JsonObject> {
  /** The response message itself (for fields JSON does not show as the document does). */
  response?: MessageShape<O>;
}

/**
 * Calls RPCs by descriptor over gRPC (@grpc/grpc-js) or Connect (connect-node JSON over
 * HTTP/1.1). Never throws for an RPC error: the Outcome carries it.
 */
export class RpcClient {
  private readonly grpcClients = new Map<DescService, GrpcJsClient<DescService>>();
  private transport?: Transport;

  constructor(
    readonly protocol: RpcProtocol,
    private readonly baseUrl: string,
  ) {}

  /** Calls `method` with a request given in its JSON form (the document's names, as REST takes them). */
  callJson<I extends DescMessage, O extends DescMessage>(method: DescMethodUnary<I, O>, json: Record<string, unknown>, headers: Record<string, string> = {}): Promise<RpcOutcome<O>> {
    return this.call(method, fromJson(method.input, defined(json) as JsonValue) as MessageInitShape<I>, headers);
  }

  async call<I extends DescMessage, O extends DescMessage>(method: DescMethodUnary<I, O>, input: MessageInitShape<I>, headers: Record<string, string> = {}): Promise<RpcOutcome<O>> {
    if (this.protocol === "grpc") {
      let client = this.grpcClients.get(method.parent);
      if (!client) this.grpcClients.set(method.parent, (client = new GrpcJsClient(method.parent, this.baseUrl)));
      const r = await client.call(method.name, input as Record<string, unknown>, headers);
      // An error's metadata is its trailers.
      if (r.error) {
        const bin = r.error.metadata.get("grpc-status-details-bin");
        const { code: _c, message: _m, ...details } = bin.length > 0 ? grpcStatusDetails(bin[0] as Buffer) : { code: 0, message: "" };
        return { code: codeName(r.error.code as number as Code), message: r.error.details, headers: metadataHeaders(r.header, r.error.metadata), details };
      }
      return { code: "ok", data: this.json(method, r.message), response: r.message, headers: metadataHeaders(r.header, r.trailer) };
    }
    this.transport ??= createConnectTransport({ baseUrl: this.baseUrl, httpVersion: "1.1" });
    try {
      const r = await this.transport.unary(method, undefined, undefined, headers, input);
      const all = new Headers(r.header);
      r.trailer.forEach((v, k) => all.append(k, v));
      return { code: "ok", data: this.json(method, r.message), response: r.message, headers: all };
    } catch (e) {
      const err = ConnectError.from(e);
      return { code: codeName(err.code), message: err.rawMessage, headers: err.metadata, details: connectDetails(err) };
    }
  }

  private json<O extends DescMessage>(method: DescMethodUnary<DescMessage, O>, message: MessageShape<O>): JsonObject {
    // REST writes its JSON the same way (src/transcode/response.ts).
    return toJson(method.output, message, { alwaysEmitImplicit: true }) as JsonObject;
  }

  close(): void {
    for (const c of this.grpcClients.values()) c.close();
    this.grpcClients.clear();
  }
}
