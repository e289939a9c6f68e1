// The Timestamps of a request message name a time google.protobuf.Timestamp allows. In JSON,
// protobuf-es refuses one out of range and the router's text decoder one that names no real time
// (json-text.ts); in binary a Timestamp is two numbers protobuf-es takes as they come: nanos of
// -1 or 2e9 (carried into the seconds, a time other than the one sent), seconds before the year
// 1 or after 9999 (accepted by the audit query, refused by login only after its credential
// check). Every request message of a type that holds a Timestamp is checked here, on every
// protocol, before the access check (as a JSON request that does not parse never reaches it):
// INVALID_ARGUMENT naming the field, with the reason and a BadRequest, as its JSON counterpart.
import type { DescMessage } from "@bufbuild/protobuf";
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { findTimestampOutOfRange, hasTimestamp } from "../transcode/timestamp.js";
import { errorDetails } from "./error-details.js";

function check(desc: DescMessage, message: Parameters<typeof findTimestampOutOfRange>[1]): void {
  const found = findTimestampOutOfRange(desc, message);
  if (!found) return;
  const text = `cannot decode field ${desc.typeName}.${found.field} from binary: ${found.reason}`;
  throw new ConnectError(text, Code.InvalidArgument, undefined, errorDetails({ reason: "MALFORMED_REQUEST", fieldViolations: [{ field: found.field, description: found.reason }] }));
}

async function* checked<T extends Parameters<typeof findTimestampOutOfRange>[1]>(desc: DescMessage, messages: AsyncIterable<T>): AsyncGenerator<T> {
  for await (const m of messages) {
    check(desc, m);
    yield m;
  }
}

export function createTimestampInterceptor(): Interceptor {
  return (next) => (req) => {
    const desc = req.method.input;
    if (!hasTimestamp(desc)) return next(req);
    if (!req.stream) {
      check(desc, req.message);
      return next(req);
    }
    return next({ ...req, message: checked(desc, req.message) });
  };
}
