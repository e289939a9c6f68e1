import type { ServerResponse } from "node:http";
import type { Http2ServerResponse } from "node:http2";
import { fromBinary, isFieldSet, toJson, type DescMessage, type JsonValue, type Message } from "@bufbuild/protobuf";
import { errorToJson, trailerMux } from "@connectrpc/connect/protocol-connect";
import type { UniversalServerResponse } from "@connectrpc/connect/protocol";
import type { Binding } from "./binding.js";
import type { UnaryOutcome } from "./transcoder.js";
import { httpStatusForCode } from "./status.js";
import { entityTag, noneMatch, storable } from "./conditional.js";

export type NodeResponse = ServerResponse | Http2ServerResponse;
export type NodeHeaders = Record<string, string | string[]>;

/** A GET or HEAD request, whose cacheable answer is validated: its If-None-Match. */
export interface Conditional {
  ifNoneMatch: string | undefined;
}

// Connect's framing headers; the transcoder writes its own.
const connectOwned = new Set(["content-type", "content-length", "content-encoding"]);

const jsonContentType = "application/json";

/**
 * The default-value policy: implicit-presence fields are always written (zero values
 * included); fields with explicit presence (`optional`, messages, oneof members) only when set.
 */
const jsonOptions = { alwaysEmitImplicit: true } as const;

export function send(res: NodeResponse, status: number, headers: NodeHeaders, body: Uint8Array | string | undefined): void {
  if (body !== undefined) {
    headers["content-length"] = String(typeof body === "string" ? Buffer.byteLength(body) : body.byteLength);
  }
  (res as ServerResponse).writeHead(status, headers);
  (res as ServerResponse).end(body);
}

/** The JSON error body every error answer uses. */
export function sendError(
  res: NodeResponse,
  status: number,
  code: string,
  message: string,
  details: JsonValue[],
  headers: NodeHeaders,
): void {
  headers["content-type"] = jsonContentType;
  send(res, status, headers, JSON.stringify({ code, message, details }));
}

async function readAll(body: AsyncIterable<Uint8Array> | undefined): Promise<Uint8Array> {
  if (!body) {
    return new Uint8Array(0);
  }
  const chunks: Uint8Array[] = [];
  for await (const c of body) {
    chunks.push(c);
  }
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
}

function passThroughHeaders(from: Headers | undefined, into: NodeHeaders): void {
  from?.forEach((value, key) => {
    if (connectOwned.has(key)) {
      return;
    }
    const existing = into[key];
    if (existing === undefined) {
      into[key] = value;
    } else if (Array.isArray(existing)) {
      existing.push(value);
    } else {
      into[key] = [existing, value];
    }
  });
}

/**
 * A success answer. One a cache may store (its handler set a Cache-Control without no-store) to
 * a GET or HEAD (`conditional`) carries a strong ETag of its bytes, and is 304 without a body
 * when If-None-Match names it (RFC 9110 13.1.2, 15.4.5: the 200's headers but for the content
 * type). A HEAD answer is the GET's, tag included: Node leaves the body out.
 */
function sendSuccess(res: NodeResponse, status: number, headers: NodeHeaders, body: Uint8Array | string, conditional: Conditional | undefined): void {
  if (conditional !== undefined && status === 200 && storable(headers["cache-control"])) {
    const tag = entityTag(body);
    headers.etag = tag;
    if (noneMatch(conditional.ifNoneMatch, tag)) {
      delete headers["content-type"];
      return send(res, 304, headers, undefined);
    }
  }
  send(res, status, headers, body);
}

/**
 * Turns the Connect unary answer (binary on success, JSON error otherwise) into the REST
 * answer. `headers` already holds the CORS headers, if any.
 */
export async function sendRpcResponse(
  res: NodeResponse,
  binding: Binding,
  uRes: UniversalServerResponse,
  headers: NodeHeaders,
  conditional?: Conditional,
): Promise<void> {
  const bytes = await readAll(uRes.body);
  passThroughHeaders(uRes.header, headers);
  if (uRes.status !== 200) {
    return sendRpcError(res, uRes.status, bytes, headers);
  }
  sendOutput(res, binding, fromBinary(binding.rpc.output, bytes), headers, conditional);
}

/**
 * The REST answer to a call invoked without its Connect framing (transcoder.ts, DirectUnary):
 * the same answer sendRpcResponse gives to the Connect handler's, header for header: the
 * Connect protocol's trailers travel as `trailer-` headers, its error as the error body.
 */
export function sendOutcome(
  res: NodeResponse,
  binding: Binding,
  outcome: UnaryOutcome,
  headers: NodeHeaders,
  conditional?: Conditional,
): void {
  passThroughHeaders(trailerMux(outcome.header, outcome.trailer), headers);
  if (outcome.error) {
    const e = errorToJson(outcome.error, jsonOptions) as { code: string; message?: string; details?: JsonValue[] };
    return sendError(res, httpStatusForCode(e.code), e.code, e.message ?? "", e.details ?? [], headers);
  }
  sendOutput(res, binding, outcome.message!, headers, conditional);
}

function sendOutput(res: NodeResponse, binding: Binding, output: Message, headers: NodeHeaders, conditional: Conditional | undefined): void {
  const status = binding.status;
  if (status === 204) {
    return send(res, status, headers, undefined);
  }
  const rule = binding.response;
  if (binding.unsetBodyStatus !== undefined && rule.kind !== "message" && rule.field !== undefined && !isFieldSet(output, rule.field)) {
    return send(res, binding.unsetBodyStatus, headers, undefined);
  }
  switch (rule.kind) {
    case "raw": {
      const body = (rule.field ? (output as Record<string, unknown>)[rule.field.localName] : output) as
        | { contentType: string; data: Uint8Array }
        | undefined;
      headers["content-type"] = body?.contentType || binding.contentType || "application/octet-stream";
      return sendSuccess(res, status, headers, body?.data ?? new Uint8Array(0), conditional);
    }
    case "field": {
      const json = outputJson(binding, output) as Record<string, JsonValue>;
      headers["content-type"] = jsonContentType;
      return sendSuccess(res, status, headers, JSON.stringify(json[rule.field.jsonName] ?? null), conditional);
    }
    case "message":
      headers["content-type"] = jsonContentType;
      return sendSuccess(res, status, headers, JSON.stringify(outputJson(binding, output)), conditional);
  }
}

/** The answer message as JSON, its timestamps to the millisecond when the binding says so. */
function outputJson(binding: Binding, output: Message): JsonValue {
  const json = toJson(binding.rpc.output as DescMessage, output, jsonOptions);
  if (binding.timestampMillis) millisTimestamps(binding.rpc.output as DescMessage, json);
  return json;
}

const timestampTypeName = "google.protobuf.Timestamp";

/**
 * Gives every google.protobuf.Timestamp in a message's JSON (nested messages, lists and map
 * values included) a fraction of at least three digits: proto3 JSON writes a whole second
 * without one (`...:11Z`), a JavaScript Date's JSON as `...:11.000Z`. In place.
 */
function millisTimestamps(desc: DescMessage, json: JsonValue): void {
  if (json === null || typeof json !== "object" || Array.isArray(json)) return;
  const obj = json as Record<string, JsonValue>;
  for (const field of desc.fields) {
    const value = obj[field.jsonName];
    if (value === undefined || value === null) continue;
    if (field.fieldKind === "message") {
      obj[field.jsonName] = millisValue(field.message, value);
    } else if (field.fieldKind === "list" && field.listKind === "message" && Array.isArray(value)) {
      obj[field.jsonName] = value.map((item) => millisValue(field.message, item));
    } else if (field.fieldKind === "map" && field.mapKind === "message" && typeof value === "object" && !Array.isArray(value)) {
      const map = value as Record<string, JsonValue>;
      for (const key of Object.keys(map)) map[key] = millisValue(field.message, map[key]!);
    }
  }
}

function millisValue(desc: DescMessage, value: JsonValue): JsonValue {
  if (desc.typeName === timestampTypeName) {
    return typeof value === "string" ? value.replace(/(T\d\d:\d\d:\d\d)Z$/, "$1.000Z") : value;
  }
  // Other well-known types (Struct, Duration, wrappers, ...) have JSON forms of their own.
  if (!desc.typeName.startsWith("google.protobuf.")) millisTimestamps(desc, value);
  return value;
}

function sendRpcError(
  res: NodeResponse,
  connectStatus: number,
  bytes: Uint8Array,
  headers: NodeHeaders,
): void {
  let code = "internal";
  let message = "";
  let details: JsonValue[] = [];
  try {
    const e = JSON.parse(Buffer.from(bytes).toString("utf8")) as { code?: unknown; message?: unknown; details?: unknown };
    if (typeof e.code === "string") code = e.code;
    if (typeof e.message === "string") message = e.message;
    if (Array.isArray(e.details)) details = e.details as JsonValue[];
  } catch {
    // Not a Connect error body (the router refused the call itself): report it as internal.
    message = `the handler answered HTTP ${connectStatus}`;
  }
  const status = httpStatusForCode(code);
  sendError(res, status, code, message, details, headers);
}
