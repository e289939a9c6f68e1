// Reading the error details Tessera sends (google.rpc.ErrorInfo, RetryInfo, BadRequest) the way
// clients do: from a ConnectError (findDetails), from gRPC's `grpc-status-details-bin` (a
// google.rpc.Status, decoded with the generated schema), and from a Connect or REST JSON error.
import assert from "node:assert/strict";
import { create, createRegistry, fromBinary, toBinary, type JsonValue } from "@bufbuild/protobuf";
import { anyUnpack } from "@bufbuild/protobuf/wkt";
import type { ConnectError } from "@connectrpc/connect";
import { base64Encode } from "@bufbuild/protobuf/wire";
import {
  BadRequestSchema,
  ErrorInfoSchema,
  RetryInfoSchema,
} from "../../gen/google/rpc/error_details_pb.js";
import { StatusSchema } from "../../gen/google/rpc/status_pb.js";

/** What the details say, in one plain shape for assertions. */
export interface DetailFacts {
  reason?: string;
  domain?: string;
  metadata?: Record<string, string>;
  retryDelaySeconds?: number;
  fieldViolations?: Array<{ field: string; description: string }>;
}

const registry = createRegistry(ErrorInfoSchema, RetryInfoSchema, BadRequestSchema);

function facts(messages: Array<{ $typeName: string }>): DetailFacts {
  const out: DetailFacts = {};
  for (const m of messages) {
    if (m.$typeName === ErrorInfoSchema.typeName) {
      const e = m as ReturnType<typeof create<typeof ErrorInfoSchema>>;
      Object.assign(out, { reason: e.reason, domain: e.domain, metadata: { ...e.metadata } });
    } else if (m.$typeName === RetryInfoSchema.typeName) {
      const r = m as ReturnType<typeof create<typeof RetryInfoSchema>>;
      out.retryDelaySeconds = Number(r.retryDelay?.seconds ?? 0n);
    } else if (m.$typeName === BadRequestSchema.typeName) {
      const b = m as ReturnType<typeof create<typeof BadRequestSchema>>;
      out.fieldViolations = b.fieldViolations.map((v) => ({ field: v.field, description: v.description }));
    }
  }
  return out;
}

/** The details of a ConnectError, read with findDetails as a connect-es client would. */
export function connectDetails(e: ConnectError): DetailFacts {
  return facts([...e.findDetails(ErrorInfoSchema), ...e.findDetails(RetryInfoSchema), ...e.findDetails(BadRequestSchema)]);
}

/** `grpc-status-details-bin` (base64 text, or the raw bytes grpc-js hands over) decoded as a google.rpc.Status. */
export function grpcStatusDetails(bin: string | Uint8Array): { code: number; message: string } & DetailFacts {
  const bytes = typeof bin === "string" ? Buffer.from(bin, "base64") : bin;
  const status = fromBinary(StatusSchema, bytes);
  const unpacked = status.details.map((a) => {
    const m = anyUnpack(a, registry);
    if (!m) throw new Error(`unknown detail type ${a.typeUrl}`);
    return m;
  });
  return { code: status.code, message: status.message, ...facts(unpacked) };
}

/** The `details` of a Connect or REST JSON error body, decoded from their binary `value`s. */
export function jsonDetails(details: unknown): DetailFacts {
  if (!Array.isArray(details)) throw new Error(`details is not an array: ${JSON.stringify(details)}`);
  return facts(
    details.map((d: { type: string; value: string }) => {
      const desc = registry.getMessage(d.type);
      if (!desc) throw new Error(`unknown detail type ${d.type}`);
      return fromBinary(desc, Buffer.from(d.value, "base64"));
    }),
  );
}

/**
 * The JSON detail a Tessera error body carries for `reason` alone, as connect-es writes it:
 * `{type, debug, value}` (base64 without padding).
 */
export function errorInfoJson(reason: string, opts: { metadata?: boolean } = {}): JsonValue {
  const value = toBinary(ErrorInfoSchema, create(ErrorInfoSchema, { reason, domain: "tessera" }));
  return {
    type: "google.rpc.ErrorInfo",
    debug: { reason, domain: "tessera", ...(opts.metadata !== false && { metadata: {} }) },
    value: base64Encode(value, "std_raw"),
  };
}

/** `grpc-status-details-bin` as Tessera sends it for an error with `reason` alone. */
export function statusDetailsBin(code: number, message: string, reason: string): string {
  const info = create(ErrorInfoSchema, { reason, domain: "tessera" });
  const status = create(StatusSchema, {
    code,
    message,
    details: [{ typeUrl: `type.googleapis.com/${ErrorInfoSchema.typeName}`, value: toBinary(ErrorInfoSchema, info) }],
  });
  return base64Encode(toBinary(StatusSchema, status), "std_raw");
}

/** A REST (or Connect) JSON error body with its `details` decoded: what to compare whole. */
export function decodedBody(body: { code: string; message: string; details: unknown }): { code: string; message: string; details: DetailFacts } {
  return { ...body, details: jsonDetails(body.details) };
}

/**
 * The REST answer of a call the store could not serve: 503, `Retry-After: 1`, and the JSON error
 * with reason STORE_UNAVAILABLE and a RetryInfo of that second.
 */
export function assertStoreUnavailable(res: { status: number; text: string; headers: Headers; body: { code: string; message: string; details: unknown } }): void {
  assert.equal(res.status, 503, res.text);
  assert.equal(res.headers.get("retry-after"), "1");
  assert.deepEqual(decodedBody(res.body), {
    code: "unavailable",
    message: "the store is unavailable, try again shortly",
    details: { ...tesseraDetails("STORE_UNAVAILABLE"), retryDelaySeconds: 1 },
  });
}

/** The details of a Tessera error with `reason`, and the field violations given as field -> description. */
export function tesseraDetails(reason: string, fields?: Record<string, string>): DetailFacts {
  return {
    reason,
    domain: "tessera",
    metadata: {},
    ...(fields && { fieldViolations: Object.entries(fields).map(([field, description]) => ({ field, description })) }),
  };
}
