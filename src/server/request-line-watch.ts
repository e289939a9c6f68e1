// Which bound an HTTP/1.1 request over the header limit broke. Node's parser counts the request
// target and the header fields against one bound (maxHeaderSize) and reports either as a header
// overflow (HPE_HEADER_OVERFLOW), without saying where it was: a target longer than the server
// reads is 414 URI Too Long (RFC 9112 3, RFC 9110 15.5.15), a header block too large 431 (RFC 6585
// 5). The bytes tell them apart: the bound was crossed on the request line when no line of the
// request had ended (no LF since it began) where the parser stopped. That point is in the read
// the parser refused (the error's rawPacket, up to its bytesParsed), but the request may have
// begun reads before it (a head cut across reads; over TLS, every record of 16 KiB): the parser
// reads a connection natively, no "data" event shows its bytes, so what the line under way is
// (the request line, a field line, or a token not yet told apart) is noted at the end of each
// read that leaves a head unfinished, from that read's bytes, and carried to the next. A read
// that ends within a body or between requests (most reads) is not looked at.
import type { Socket } from "node:net";

// The slots of Node's HTTPParser for the callbacks it calls (lib/_http_common.js's
// kOnMessageBegin, and kOnExecute: after each read the parser took from the socket itself). Node
// clears both as it frees a parser for the next connection.
const kOnMessageBegin = 0;
const kOnExecute = 5;

interface Parser {
  [slot: number]: unknown;
  headersCompleted(): boolean;
  getCurrentBuffer(): Buffer;
}

/** The line under way: the request line, a field line, or a token so far (a method, or a field name). */
type Line = "request" | "field" | string;

/** A token (RFC 9110 5.6.2) at the start of a line: a method or a field name. */
const lineToken = /^[!#$%&'*+.^_`|~0-9A-Za-z-]*/;
/** Longer than any method Node's parser takes: a token this long starts a field line. */
const longestMethod = 32;

/** What the line that starts with `start` is. */
function lineOf(start: string): Line {
  // A line ended last: the request line had, and a field line is under way.
  if (start === "") return "field";
  const token = lineToken.exec(start)![0];
  if (token.length === start.length) return token.length > longestMethod ? "field" : token;
  return token.length > 0 && start[token.length] === ":" ? "field" : "request";
}

/**
 * The line under way once `bytes` up to `end` are read, after `line` (the line under way when the
 * read before ended mid-head, if it did). `began`: a request began in these bytes.
 */
function lineAfter(line: Line | undefined, began: boolean, bytes: Buffer, end: number): Line {
  const lf = end === 0 ? -1 : bytes.lastIndexOf(0x0a, end - 1);
  if (!began) {
    // The head began in an earlier read: a line that ends here is one of its own.
    if (lf >= 0) return "field";
    if (line === "request" || line === "field") return line;
    return lineOf((line ?? "") + bytes.toString("latin1", 0, Math.min(end, 2 * longestMethod)));
  }
  // A request began here and no line has ended since: its request line is under way. Otherwise the
  // line after the last LF tells (the LF ended a line of the request, or came before it: what
  // precedes the request there, the end of the body before it, starts no field line).
  if (lf < 0) return "request";
  return lineOf(bytes.toString("latin1", lf + 1, Math.min(end, lf + 1 + 2 * longestMethod)));
}

export interface RequestLineWatch {
  /** Whether `e`, a header overflow on the connection, was a request target over the bound (414, not 431). */
  targetTooLong(e: Error & { rawPacket?: unknown; bytesParsed?: unknown }): boolean;
}

/**
 * Watches the heads the HTTP/1.1 parser of `socket` reads (Node's server has just set it up).
 * `sniffed`: bytes read before the parser took the socket, which it is handed first (put back
 * into the socket's buffer: the parser takes those in a "data" event, outside kOnExecute).
 * Undefined where the parser is not as expected (another Node version): every header overflow is
 * then 431, as Node answers it.
 */
export function watchRequestLines(socket: Socket, sniffed: Buffer | undefined): RequestLineWatch | undefined {
  const parser = (socket as { parser?: Parser | null }).parser;
  const onExecute = parser?.[kOnExecute];
  if (!parser || typeof onExecute !== "function" || parser[kOnMessageBegin] != null) return undefined;
  if (typeof parser.headersCompleted !== "function" || typeof parser.getCurrentBuffer !== "function") return undefined;
  // A request began in the bytes being parsed (since the last read that was looked at).
  let began = false;
  // The line under way when the last read ended mid-head; undefined at the end of a head.
  let line: Line | undefined;
  let pending = sniffed;
  // The bytes of the read in hand, after those sniffed (parsed first, not yet looked at).
  const withSniffed = (read: Buffer) => (pending === undefined || read === pending ? read : Buffer.concat([pending, read]));
  parser[kOnMessageBegin] = () => {
    began = true;
  };
  parser[kOnExecute] = function (this: unknown, ret: unknown) {
    if (!(ret instanceof Error)) {
      if (parser.headersCompleted()) line = undefined;
      else if (began || line !== undefined) {
        const read = withSniffed(parser.getCurrentBuffer());
        line = lineAfter(line, began, read, read.length);
      }
      began = false;
      pending = undefined;
    }
    return (onExecute as (this: unknown, ret: unknown) => unknown).call(this, ret);
  };
  return {
    targetTooLong(e) {
      // Trailers (a chunked body's) come after the head: no request line there.
      if (parser.headersCompleted()) return false;
      const raw = e.rawPacket;
      const parsed = e.bytesParsed;
      if (!Buffer.isBuffer(raw) || typeof parsed !== "number" || parsed > raw.length) return false;
      const read = withSniffed(raw);
      return lineAfter(line, began, read, read.length - raw.length + parsed) === "request";
    },
  };
}
