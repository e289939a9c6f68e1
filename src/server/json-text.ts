// The text of every JSON request message of Connect, gRPC and gRPC-Web (connect-es reads
// `textDecoder` from the router's JSON options at run time): UTF-8, decoded fatally (connect-es
// would otherwise turn invalid UTF-8 into U+FFFD and accept it; RFC 8259 requires UTF-8; the
// REST transcoder refuses it too, 400), and Unicode text in its escapes as well: a string whose
// `\u` escapes leave a surrogate unpaired (`"\ud800"`) is no text (I-JSON, RFC 7493 2.1) and is
// refused the same way. protobuf-es refuses such a string in a string field, but quotes the value
// in its error where another type was expected, and connect-es's gRPC and gRPC-Web handlers
// percent-encode that message with encodeURIComponent, which throws on a lone surrogate: HTTP
// 500, no grpc-status, a client's mistake logged as a failed answer.
// And the Timestamps of the call's request message are read, and name real times, and its number
// fields given as strings hold a number's text, or the error names the field (checkFields below).

import type { JsonValue } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { currentCall } from "../call-scope.js";
import { findNonDecimalNumber, hasNumberField } from "../transcode/json-numbers.js";
import { findUnreadableTimestamp, hasTimestamp } from "../transcode/timestamp.js";
import { errorDetails } from "./error-details.js";

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** A `\u` escape of a surrogate (checked in full only when one is there: a pair is rare). */
const surrogateEscape = /\\u[dD][89a-fA-F]/;
/** Every escape, left to right: `\\` is one escape, so the "ud800" after it is plain text. */
const escapes = /\\(?:u([0-9a-fA-F]{4})|[\s\S])/g;

/** True when every surrogate `\u` escape of a JSON text is half of an escaped pair. */
function pairedSurrogateEscapes(text: string): boolean {
  if (!surrogateEscape.test(text)) return true;
  let pendingHighEnd = -1; // where the escape of an unpaired high surrogate ended
  for (const m of text.matchAll(escapes)) {
    const unit = m[1] === undefined ? -1 : parseInt(m[1], 16);
    const isLow = unit >= 0xdc00 && unit <= 0xdfff;
    if (pendingHighEnd >= 0) {
      if (!isLow || m.index !== pendingHighEnd) return false;
      pendingHighEnd = -1;
      continue;
    }
    if (isLow) return false;
    if (unit >= 0xd800 && unit <= 0xdbff) pendingHighEnd = m.index + m[0].length;
  }
  return pendingHighEnd < 0;
}

/**
 * A Timestamp field of the call's request message (when the dispatcher has routed the call and
 * that type holds one) whose text names no real time: protobuf-es would carry 2030-02-30 over
 * into March (transcode/timestamp.ts); or one protobuf-es refuses itself (no RFC 3339 text, out
 * of range, a number), whose error names the Timestamp type but not the field. Or a number field
 * given a string that is no number's text, which protobuf-es would read with Number() ("0x10" as
 * 16, transcode/json-numbers.ts). INVALID_ARGUMENT naming the field, in protobuf-es's words for a
 * field it cannot decode, with a BadRequest for it: the request cannot be read. The text is
 * parsed here only for a type that holds such a field (known once per type).
 */
function checkFields(text: string): void {
  const type = currentCall()?.requestType;
  if (type === undefined || !(hasTimestamp(type) || hasNumberField(type))) return;
  let json: JsonValue;
  try {
    json = JSON.parse(text) as JsonValue;
  } catch {
    return; // protobuf-es says what is wrong with it
  }
  const found = findUnreadableTimestamp(type, json) ?? findNonDecimalNumber(type, json);
  if (!found) return;
  const message = `cannot decode field ${type.typeName}.${found.field} from JSON: ${found.reason}`;
  throw new ConnectError(message, Code.InvalidArgument, undefined, errorDetails({ reason: "MALFORMED_REQUEST", fieldViolations: [{ field: found.field, description: found.reason }] }));
}

/** The decoder the router's JSON options carry (`{ textDecoder }`). */
export const jsonTextDecoder = {
  decode(data: Uint8Array): string {
    const text = utf8.decode(data);
    if (!pairedSurrogateEscapes(text)) throw new TypeError("a JSON string holds an unpaired surrogate escape: not Unicode text");
    checkFields(text);
    return text;
  },
};
