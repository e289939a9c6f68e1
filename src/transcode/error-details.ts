import type { JsonValue } from "@bufbuild/protobuf";
import { ConnectError } from "@connectrpc/connect";
import { errorToJson } from "@connectrpc/connect/protocol-connect";
import { BadRequestSchema, ErrorInfoSchema } from "../../gen/google/rpc/error_details_pb.js";

/** Written as the RPC errors' details are: implicit fields included in `debug`. */
const jsonOptions = { alwaysEmitImplicit: true } as const;

/**
 * The `details` of one of the transcoder's own errors, as Connect's JSON error format encodes
 * them (`{type, value, debug}`, which is what an RPC error's details look like over REST too):
 * a google.rpc.ErrorInfo with `reason` and `domain`, and a google.rpc.BadRequest naming `field`
 * when the error is about one.
 */
export function errorDetailsJson(domain: string, reason: string, field?: string, description?: string): JsonValue[] {
  const e = new ConnectError("", undefined, undefined, [
    { desc: ErrorInfoSchema, value: { reason, domain } },
    ...(field === undefined ? [] : [{ desc: BadRequestSchema, value: { fieldViolations: [{ field, description: description ?? "" }] } }]),
  ]);
  return (errorToJson(e, jsonOptions).details ?? []) as JsonValue[];
}
