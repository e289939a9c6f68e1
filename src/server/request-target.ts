// The target of an HTTP/1.1 request in absolute form (RFC 9112 3.2.2: `GET http://host:8080/jwt/version
// HTTP/1.1`, as a client sends it to a proxy, and as a server MUST accept it). Everything past the
// listener routes and reads `req.url` as origin form ("/path?query") and the authority from
// Host, so such a request is brought to that form once, as it arrives: `req.url` becomes its
// path and query, and its authority takes the place of the Host header (RFC 9112 3.2.2: the
// server ignores the Host field and uses the target's authority). Whatever reads Host (the URL
// RPCs see, the discovery document's URLs) then reads the target's authority; CORS reads Origin
// and the session cookie names no domain, so neither depends on it. The scheme names no
// transport here: http and https alike are served as the connection is (TLS or not), as
// HTTP/2's :scheme is. Another scheme, or an authority that is not host[:port] (user info, an
// empty host), is refused. The Host header itself is checked first (hostProblem: missing in
// HTTP/1.1, given twice, or no host). HTTP/2 needs none of this: nghttp2 refuses a :path that
// is not in origin form (or "*"), and the authority comes in :authority, held to what Host is
// (hostProblem), and a Host sent with it must name the same authority; its :scheme is held to what the absolute form's is (schemeProblem), and its
// :path to the bytes an HTTP/1.1 request target may hold (pathProblem).
import type { Http2ServerRequest } from "node:http2";
import { quotedMax, quotedRequestText } from "../core/text.js";
import type { NodeRequest } from "./dispatch.js";

/** scheme "://" authority, then the path, query and fragment as sent. */
const absoluteForm = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/([^/?#]*)([\s\S]*)$/;

/**
 * host [":" port] of RFC 3986 without user info: an IP literal (IPv6), or a registered name or
 * IPv4 address (unreserved characters, sub-delims and percent-escapes), not empty.
 */
const hostPort = /^(?:\[[0-9A-Fa-f:.]+\]|(?:[A-Za-z0-9\-._~!$&'()*+,;=]|%[0-9A-Fa-f]{2})+)(?::[0-9]{0,5})?$/;

/**
 * Brings an HTTP/1.1 request whose target is in absolute form to origin form (above). Returns
 * why the target is refused, or undefined (origin form already, or brought to it). The scheme
 * and authority it quotes are quoted as quotedPart says (`hidden`: see unquotable).
 */
export function toOriginForm(req: NodeRequest, hidden: (text: string) => boolean): string | undefined {
  const url = req.url ?? "";
  if (req.httpVersionMajor !== 1 || url.charCodeAt(0) === 47 /* "/" */ || url === "*") return undefined;
  const m = absoluteForm.exec(url);
  // Node's parser lets through a target that starts with "*" and goes on ("*x/y"): no form of
  // RFC 9112 3.2, and not quoted (it may hold a credential, as a path may). CONNECT's authority
  // form never comes here (listener.ts answers CONNECT).
  if (!m) return "the request target is in no form HTTP/1.1 has: it must be a path (origin form), an absolute URI or, for OPTIONS, \"*\"";
  const [, scheme, authority, rest] = m as unknown as [string, string, string, string];
  const lower = scheme.toLowerCase();
  if (lower !== "http" && lower !== "https") return `the request target's scheme ${quotedPart(scheme, hidden)} is not http or https`;
  if (!hostPort.test(authority) || !parsesAsUrl(`${lower}://${authority}/`)) {
    return userInfoProblem(authority, "the request target's authority", hidden) ?? `the request target's authority ${quotedPart(authority, hidden)} is not a host with an optional port`;
  }
  req.url = rest.charCodeAt(0) === 47 /* "/" */ ? rest : `/${rest}`;
  req.headers.host = authority;
  return undefined;
}

/**
 * What is wrong with the Host header of an HTTP/1.x request, or the :authority of an HTTP/2 one
 * (its Host header when it has none), or undefined. RFC 9112 3.2: a server MUST answer 400 to an
 * HTTP/1.1 request without one, and to any request with more than one Host line or one whose
 * value is no host with an optional port. Node's parser keeps the first of two Host lines (and
 * drops the others silently), so they are counted in the raw headers. An empty Host is valid
 * (RFC 9110 7.2: a target URI without an authority) and served as before: REST needs no
 * authority, an RPC path (whose URL needs one) refuses it. HTTP/1.0 may leave Host out. HTTP/2
 * may leave :authority out (RFC 9113 8.3.1), and nghttp2 resets a stream whose :authority is
 * empty or holds a character no authority has; one that has none of those but is still no host
 * with an optional port (user info, RFC 9113 8.3.1's MUST NOT; a port past 65535; "[::1") is
 * refused as such a Host is, and so is a Host sent along that names another authority
 * (differingHost).
 */
export function hostProblem(req: NodeRequest, hidden: (text: string) => boolean): string | undefined {
  if (req.httpVersionMajor === 2) {
    const headers = (req as Http2ServerRequest).headers;
    const authority = headers[":authority"];
    const host = headers.host;
    if (typeof authority !== "string") return typeof host === "string" ? authorityProblem(host, "the Host header", hidden) : undefined;
    const problem = authorityProblem(authority, "the :authority", hidden);
    if (problem !== undefined || typeof host !== "string") return problem;
    return authorityProblem(host, "the Host header", hidden) ?? differingHost(authority, host, headers[":scheme"], hidden);
  }
  if (req.httpVersionMajor !== 1) return undefined;
  const { count, value } = headerLines(req, "host");
  if (count > 1) return `the request has ${count} Host headers: it must have one`;
  if (count === 0) return req.httpVersionMinor >= 1 ? `an HTTP/${req.httpVersion} request must have a Host header` : undefined;
  return authorityProblem(value, "the Host header", hidden);
}

/**
 * RFC 9113 8.3.1: a server SHOULD treat a request as malformed if its Host identifies an entity
 * other than its :authority, the two compared normalized (RFC 3986 6.2): the host in any case,
 * an empty port or the :scheme's default one (80, 443) as none. Anything else that differs is
 * refused: a proxy in front may have routed or checked the request by the one, and this server
 * would read the other. Both are valid authorities here (authorityProblem).
 */
function differingHost(authority: string, host: string, scheme: string | undefined, hidden: (text: string) => boolean): string | undefined {
  if (host === authority) return undefined;
  const defaultPort = scheme?.toLowerCase() === "https" ? ":443" : scheme?.toLowerCase() === "http" ? ":80" : undefined;
  const normalized = (value: string) => {
    let v = value.toLowerCase();
    if (v.endsWith(":")) v = v.slice(0, -1);
    else if (defaultPort !== undefined && v.endsWith(defaultPort)) v = v.slice(0, -defaultPort.length);
    return v;
  };
  if (normalized(host) === normalized(authority)) return undefined;
  return `the Host header ${quotedPart(host, hidden)} differs from the :authority ${quotedPart(authority, hidden)}: an HTTP/2 request's Host, if sent, must name the same host and port`;
}

/**
 * An authority with user info ("user:password@host", RFC 3986 3.2.1) is refused without quoting
 * the user info: it may be a credential, and an error body is kept by clients, proxies and logs.
 */
function userInfoProblem(authority: string, what: string, hidden: (text: string) => boolean): string | undefined {
  const at = authority.lastIndexOf("@");
  return at < 0 ? undefined : `${what} holds user info (${quotedPart(`...${authority.slice(at)}`, hidden)}): it must be a host with an optional port`;
}

/**
 * A scheme, an authority or a part of one, as an error quotes it: as every request value is
 * (quotedRequestText: at most 64 characters, JSON-escaped, C1 and bidirectional controls too),
 * and "*" when it, or a part of it between ":" and "@" shown in those 64 characters (a host, a
 * port), has a credential's shape or is a secret of the configuration (`hidden`).
 */
function quotedPart(text: string, hidden: (text: string) => boolean): string {
  const parts = /[^:@]+/g;
  for (let m = parts.exec(text); m !== null && m.index < quotedMax; m = parts.exec(text)) if (hidden(m[0])) return "*";
  return quotedRequestText(text, hidden);
}

/** What is wrong with `value`, a Host or :authority (`what`), or undefined. */
function authorityProblem(value: string, what: string, hidden: (text: string) => boolean): string | undefined {
  if (value === "" || validHosts.has(value)) return undefined;
  if (!(hostPort.test(value) && parsesAsUrl(`http://${value}/`))) {
    return userInfoProblem(value, what, hidden) ?? `${what} ${quotedPart(value, hidden)} is not a host with an optional port`;
  }
  // A server sees few Host values (its own names): each is parsed once, not on every request.
  // Only those as long as a host name and port can be are kept: a Host may fill the header
  // block (16 KiB), and 256 of those held 4 MiB for whoever sent them.
  if (value.length > maxCachedHostLength) return undefined;
  if (validHosts.size >= validHostsLimit) validHosts.clear();
  validHosts.add(value);
  return undefined;
}

/**
 * What is wrong with the request's Authorization headers, or undefined: RFC 9110 5.3, a field
 * that is no list is sent once. Node's parsers (HTTP/1.1 and HTTP/2) keep the first of two
 * Authorization lines and drop the others silently, so the credential acted on could be another
 * one than a proxy in front checked (or than the client meant): they are counted in the raw
 * headers, and two are refused whichever of them is valid.
 */
export function authorizationProblem(req: NodeRequest): string | undefined {
  if (req.headers.authorization === undefined) return undefined;
  const { count } = headerLines(req, "authorization");
  return count > 1 ? `the request has ${count} Authorization headers: it must have at most one` : undefined;
}

/**
 * What is wrong with the request's Content-Type headers, or undefined: as Authorization, a field
 * that is no list is sent once (RFC 9110 5.3). Node's parsers keep the first of two and drop the
 * others, so a body was read by one media type while a proxy or filter in front may have read
 * it by the other (a form body taken for JSON on seed 004's routes, JSON for protobuf on an RPC
 * path): two are refused, whatever they say.
 */
export function contentTypeProblem(req: NodeRequest): string | undefined {
  if (req.headers["content-type"] === undefined) return undefined;
  const { count } = headerLines(req, "content-type");
  return count > 1 ? `the request has ${count} Content-Type headers: it must have at most one` : undefined;
}

/** How many lines of the header `name` (lower case) the request has, and the last one's value. */
function headerLines(req: NodeRequest, name: string): { count: number; value: string } {
  const raw = req.rawHeaders;
  let count = 0;
  let value = "";
  for (let i = 0; i < raw.length; i += 2) {
    const n = raw[i]!;
    if (n.length === name.length && n.toLowerCase() === name) {
      count++;
      value = raw[i + 1]!;
    }
  }
  return { count, value };
}

/** Host values found valid (bounded: a client sending ever new ones only costs their parse). */
const validHosts = new Set<string>();
const validHostsLimit = 256;
/** The longest Host value remembered: a DNS name (253 characters), ":" and a port (5 digits). */
const maxCachedHostLength = 253 + 1 + 5;

/**
 * An HTTP/2 request's :scheme other than http or https (in any case), refused as the absolute
 * form's scheme is: RFC 9113 8.3.1 lets :scheme name any scheme (for a proxy to translate), but
 * this origin server serves only http(s) URIs, and the request is no malformed HTTP/2 (no
 * RST_STREAM): a 400 naming it. http and https alike are served as the connection is.
 */
export function schemeProblem(req: NodeRequest, hidden: (text: string) => boolean): string | undefined {
  if (req.httpVersionMajor !== 2) return undefined;
  const scheme = (req as Http2ServerRequest).scheme ?? "";
  const lower = scheme.toLowerCase();
  return lower === "http" || lower === "https" ? undefined : `the request's :scheme ${quotedPart(scheme, hidden)} is not http or https`;
}

/**
 * The asterisk form ("*", RFC 9112 3.2.4) names no resource: it is only for a server-wide
 * OPTIONS (answered by the request handler). With any other method it is refused; nghttp2 resets
 * such an HTTP/2 stream itself.
 */
export function asteriskProblem(req: NodeRequest): string | undefined {
  return req.url === "*" && req.method !== "OPTIONS" ? `the request target "*" (asterisk form) is for OPTIONS only, not ${req.method}` : undefined;
}

/**
 * The first transfer coding of an HTTP/1.1 request other than chunked, or undefined (RFC 9112
 * 6.1: a server SHOULD answer 501 to a coding it does not understand). Node's parser takes any
 * codings before a final chunked ("gzip, chunked") and hands the body over de-chunked only, so
 * the still-coded bytes were read as the body, on every path. chunked alone, in any case, is
 * served; a list that does not end in chunked never comes here (the parser refuses it). The
 * coding as sent: the 501 quotes it as quotedRequestText does.
 */
export function transferCodingNotImplemented(req: NodeRequest): string | undefined {
  const te = req.httpVersionMajor === 1 ? req.headers["transfer-encoding"] : undefined;
  if (te === undefined || /^[ \t]*chunked[ \t]*$/i.test(te)) return undefined;
  for (const coding of te.split(",")) {
    const name = coding.trim();
    if (name !== "" && name.toLowerCase() !== "chunked") return name;
  }
  return undefined;
}

/** A character outside visible ASCII (0x21-0x7E): what HTTP/1.1's parser refuses in a request target. */
const notVisibleAscii = /[^\x21-\x7e]/;

/**
 * What is wrong with an HTTP/2 request's :path, or undefined. A URI's path and query are ASCII
 * (RFC 3986: other bytes are percent-encoded), and llhttp refuses an HTTP/1.1 request line whose
 * target holds anything outside visible ASCII (400 MALFORMED_REQUEST). nghttp2 resets a stream
 * whose :path has a space or a control character, but lets bytes 0x80-0xFF through, which Node
 * reads as Latin-1: such a path was served (a path variable or a query value took those
 * characters as text, a 404 quoted them). Refused alike here, without quoting the path (it may
 * hold a credential).
 */
export function pathProblem(req: NodeRequest): string | undefined {
  if (req.httpVersionMajor !== 2 || !notVisibleAscii.test(req.url ?? "")) return undefined;
  return "the request's :path holds a byte outside visible ASCII, which no request target has: such bytes are sent percent-encoded";
}

/**
 * A "#" in the target (origin form, after toOriginForm), or undefined. No form of RFC 9112 3.2
 * holds one: a client does not send a URI's fragment, and sends a "#" of a path or a query as
 * %23. Node's HTTP/1.1 parser and nghttp2 let it through, and readers of the target disagreed:
 * the transcoder read it as text (GET /jwt/token?user=ann&pass=pw#x took "pw#x" as the
 * password), a Connect GET as a URL (the fragment dropped), as would a proxy in front that parses
 * it as one. Refused on every path, without quoting the target (it may hold a credential).
 */
export function fragmentProblem(req: NodeRequest): string | undefined {
  if ((req.url ?? "").indexOf("#") < 0) return undefined;
  return 'the request target holds a "#", which no request target has: a fragment is not sent, and a "#" in a path or a query is sent percent-encoded (%23)';
}

function parsesAsUrl(text: string): boolean {
  try {
    return new URL(text).hostname !== "";
  } catch {
    return false;
  }
}
