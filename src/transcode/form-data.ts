// multipart/form-data bodies (RFC 7578) for loose (seed 004) bindings: the other form encoding,
// the one `curl -F` and an HTML form with enctype="multipart/form-data" send, which Flask reads
// into `request.values` as it reads a URL-encoded body. Text fields only: a file part is refused.
import { decodeUtf8 } from "./body.js";
import { badRequest } from "./http-error.js";
import { maxArguments, tooManyArguments, type Argument } from "./query.js";

export const multipartFormMediaType = "multipart/form-data";

const malformed = () => badRequest("MALFORMED_BODY", "form body is not valid multipart/form-data");

/** The boundary parameter of a multipart Content-Type (RFC 2046 5.1.1: 1 to 70 characters). */
function boundaryOf(contentType: string): string | undefined {
  const m = /;\s*boundary\s*=\s*(?:"([^"]{1,70})"|([^\s;"]{1,70}))\s*(?:;|$)/i.exec(contentType);
  return m ? (m[1] ?? m[2]) : undefined;
}

/** One parameter of a Content-Disposition value, quoted (backslash escapes) or a token. */
function dispositionParameter(params: string, key: string): string | undefined {
  const m = new RegExp(`;\\s*${key}\\s*=\\s*(?:"((?:[^"\\\\]|\\\\.)*)"|([^\\s;"]+))`, "i").exec(params);
  if (!m) return undefined;
  return m[1] !== undefined ? m[1].replace(/\\(.)/g, "$1") : m[2];
}

/** The field name of a part from its header block; a part without `form-data; name` is malformed. */
function fieldName(headers: string): string {
  for (const line of headers.split("\r\n")) {
    const m = /^content-disposition[ \t]*:[ \t]*form-data[ \t]*(;.*)?$/i.exec(line);
    if (!m) continue;
    const params = m[1] ?? "";
    const name = dispositionParameter(params, "name");
    if (name === undefined || name === "") throw malformed();
    if (dispositionParameter(params, "filename") !== undefined || dispositionParameter(params, "filename\\*") !== undefined) {
      throw badRequest("MALFORMED_BODY", `form field "${name}" is a file: only text fields are accepted`, name);
    }
    return name;
  }
  throw malformed();
}

/**
 * Splits a multipart/form-data body into its fields, in order, after `into` (the same list as
 * the query's arguments, under the same limit). A missing boundary, broken framing, a part
 * without a field name, a file part or text that is not UTF-8 is a 400 naming the problem.
 */
export function parseMultipartArguments(bytes: Buffer, contentType: string, into: Argument[] = []): Argument[] {
  const boundary = boundaryOf(contentType);
  if (boundary === undefined) throw badRequest("MALFORMED_BODY", "multipart/form-data without a boundary parameter");
  const delimiter = Buffer.from(`\r\n--${boundary}`);
  // The first delimiter opens the body, or ends a preamble (which is ignored).
  let at: number;
  if (bytes.subarray(0, delimiter.length - 2).equals(delimiter.subarray(2))) {
    at = delimiter.length - 2;
  } else {
    const first = bytes.indexOf(delimiter);
    if (first < 0) throw malformed();
    at = first + delimiter.length;
  }
  for (;;) {
    // After a delimiter: "--" closes the body (an epilogue is ignored); else padding, CRLF, a part.
    if (bytes[at] === 0x2d && bytes[at + 1] === 0x2d) return into;
    while (bytes[at] === 0x20 || bytes[at] === 0x09) at++;
    if (bytes[at] !== 0x0d || bytes[at + 1] !== 0x0a) throw malformed();
    const headersEnd = bytes.indexOf("\r\n\r\n", at);
    if (headersEnd < 0) throw malformed();
    const end = bytes.indexOf(delimiter, headersEnd + 4);
    if (end < 0) throw malformed();
    const key = fieldName(decodeUtf8(bytes.subarray(at + 2, headersEnd), "form body"));
    if (into.length >= maxArguments) throw tooManyArguments();
    into.push({ key, value: decodeUtf8(bytes.subarray(headersEnd + 4, end), "form body") });
    at = end + delimiter.length;
  }
}
