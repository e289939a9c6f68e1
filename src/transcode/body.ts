import type { IncomingMessage } from "node:http";
import type { Http2ServerRequest } from "node:http2";
import { badRequest, HttpError } from "./http-error.js";
import { arrivalTimedOut } from "../request-arrival.js";
import { quotedRequestText } from "../core/text.js";

const empty = Buffer.alloc(0);
const utf8 = new TextDecoder("utf-8", { fatal: true });

function tooLarge(limit: number): HttpError {
  return new HttpError(413, "resource_exhausted", "REQUEST_TOO_LARGE", `request body is larger than ${limit} bytes`);
}

/**
 * Reads the whole request body, refusing (413) one over `limit` bytes: up front when
 * Content-Length says so, otherwise as soon as the count passes the limit.
 */
export function readBody(req: IncomingMessage | Http2ServerRequest, limit: number): Promise<Buffer> {
  const length = req.headers["content-length"];
  if (length !== undefined) {
    const n = Number(length);
    if (n === 0) {
      return Promise.resolve(empty);
    }
    if (n > limit) {
      return Promise.reject(tooLarge(limit));
    }
  } else if (req.httpVersionMajor === 1 && req.headers["transfer-encoding"] === undefined) {
    // HTTP/1.1 without Content-Length or Transfer-Encoding has no body.
    return Promise.resolve(empty);
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let failed = false;
    req.on("data", (chunk: Buffer) => {
      if (failed) {
        return; // keep draining so the connection stays usable
      }
      size += chunk.length;
      if (size > limit) {
        failed = true;
        reject(tooLarge(limit));
        return;
      }
      chunks.push(chunk);
    });
    // The client went away, or the server cut the request at its timeout: a request that ended
    // early, not a failure of the server. Over HTTP/2 the timeout's cut ends the body as its
    // stream closes after the 408 (request-arrival.ts).
    const cut = () => new HttpError(400, "invalid_argument", "MALFORMED_BODY", "the request body was cut short");
    req.once("end", () => {
      if (failed) return;
      if (arrivalTimedOut(req)) {
        failed = true;
        reject(cut());
      } else {
        resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
      }
    });
    req.once("error", (e: NodeJS.ErrnoException) => {
      failed = true;
      reject(e.code === "ECONNRESET" ? cut() : e);
    });
    req.once("aborted", () => {
      if (failed) return;
      failed = true;
      reject(cut());
    });
  });
}

/** The media type of a Content-Type header, lower case, without parameters. */
export function mediaType(contentType: string | undefined): string {
  if (contentType === undefined) {
    return "";
  }
  const semi = contentType.indexOf(";");
  return (semi < 0 ? contentType : contentType.slice(0, semi)).trim().toLowerCase();
}

export function isJsonMediaType(type: string): boolean {
  return type === "application/json" || (type.startsWith("application/") && type.endsWith("+json"));
}

export const formMediaType = "application/x-www-form-urlencoded";

/** The `charset` parameter of a Content-Type (a quoted value unquoted), if it has one. */
export function charsetOf(contentType: string | undefined): string | undefined {
  if (contentType === undefined) return undefined;
  for (const parameter of contentType.split(";").slice(1)) {
    const eq = parameter.indexOf("=");
    if (eq < 0 || parameter.slice(0, eq).trim().toLowerCase() !== "charset") continue;
    const value = parameter.slice(eq + 1).trim();
    return value.length >= 2 && value.startsWith('"') && value.endsWith('"') ? value.slice(1, -1).replace(/\\(.)/g, "$1") : value;
  }
  return undefined;
}

/**
 * The 415 of a body that could not be read (not UTF-8, or not JSON) while its Content-Type
 * declares a charset other than UTF-8 (`application/json; charset=utf-16`): the charset is the
 * problem to name, not the bytes. Undefined when no such charset is declared. A body that does
 * read is served whatever its charset parameter says (RFC 8259 8.1: JSON is UTF-8, and the
 * parameter has no effect); `what` is the body as the message names it ("a JSON body"). The
 * charset and the content type are quoted as quotedRequestText quotes them (`hidden`: see unquotable).
 */
export function otherCharset(contentType: string | undefined, what: string, hidden: (text: string) => boolean): HttpError | undefined {
  const charset = charsetOf(contentType);
  if (charset === undefined || /^utf-?8$/i.test(charset)) return undefined;
  return new HttpError(415, "invalid_argument", "UNSUPPORTED_MEDIA_TYPE", `unsupported charset ${quotedRequestText(charset, hidden)} (content type ${quotedRequestText(contentType!, hidden)}): ${what} is read as UTF-8`);
}

/** Body bytes as text; bytes that are not UTF-8 are a 400 naming `what` ("form body"). */
export function decodeUtf8(bytes: Uint8Array, what: string): string {
  try {
    return utf8.decode(bytes);
  } catch {
    throw badRequest("MALFORMED_BODY", `${what} is not valid UTF-8`);
  }
}
