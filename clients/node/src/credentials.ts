// The credentials Tessera's APIs take, as request headers: per call (`{ headers: bearer(t) }`)
// or on every call of a client (`credentials`, or credentialInterceptor on a transport).
// Values are checked here, so a token with a line break or a login with a colon fails at the
// caller, naming the problem (never echoing the secret).
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";

/** Request headers carrying a credential; spread several into one object to combine them. */
export type CredentialHeaders = Readonly<Record<string, string>>;

/** Headers as [name, value] pairs, as `new Headers(pairs)` takes them. */
export type CredentialPairs = ReadonlyArray<ReadonlyArray<string>>;

/** Credential headers as they may be given: an object of them, [name, value] pairs, or a Headers. */
type GivenHeaders = CredentialHeaders | CredentialPairs | Headers;

/** Fixed headers (an object of them, [name, value] pairs, or a Headers), or a function giving the current ones (a token that is refreshed). */
export type CredentialSource = GivenHeaders | (() => GivenHeaders | Promise<GivenHeaders>);

/** The header of seed 000's client id. */
export const clientIdHeaderName = "x-koms-clientid";

const visibleAscii = /^[\x21-\x7e]+$/;
/** What Basic credentials must not hold: control characters (RFC 7617), and unpaired surrogates, which UTF-8 cannot carry (Buffer would send U+FFFD). */
const notBasic = /[\x00-\x1f\x7f]|\p{Cs}/u;
/**
 * What a header value cannot hold, once the whitespace at its ends is dropped (as Headers does):
 * control characters other than HTAB (RFC 9110 5.5). Headers refuses NUL and line breaks, naming
 * the value; Node's HTTP/1.1 the others, and its HTTP/2 sends them.
 */
const unsendable = /[\0-\x08\x0a-\x1f\x7f]/;
/** A header name (RFC 9110 5.1: a token). */
const headerName = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const edgeWhitespace = /^[\t\n\r ]+|[\t\n\r ]+$/g;
/** What Headers refuses too, naming neither the header nor the value: a header value is bytes (a ByteString). */
const notByte = /[^\x00-\xff]/;

/**
 * The longest header value sent, in bytes: Tessera takes request header blocks of at most 16 KiB
 * (beyond, 431; HTTP/2: the stream reset) and leaves 1 KiB of them to the request line and the
 * other headers, as for its admin token. A longer value fails at the caller: over HTTP/2, past
 * 64 KiB, Node does not send the block at all, and the call failed as if Tessera had refused its
 * stream (UNAVAILABLE, after sending it again).
 */
const maxHeaderValueBytes = 15 * 1024;

/** Credential headers, once checkSendable has passed them. */
function sendable(what: string, headers: CredentialHeaders): CredentialHeaders {
  checkSendable(Object.entries(headers), what);
  return headers;
}

/**
 * `Authorization: Bearer <token>`: a session access token (with clientId), an API token, a
 * user token, a JWT API access token, or the admin token.
 */
export function bearer(token: string): CredentialHeaders {
  if (typeof token !== "string" || !visibleAscii.test(token)) throw new TypeError("bearer: the token must be non-empty visible ASCII (no spaces or line breaks)");
  return sendable("bearer", { authorization: `Bearer ${token}` });
}

/** `Authorization: Basic base64(login:password)` (RFC 7617, UTF-8): seed 002's login. */
export function basic(login: string, password: string): CredentialHeaders {
  if (typeof login !== "string" || login === "" || login.includes(":") || notBasic.test(login)) {
    throw new TypeError("basic: the login must be non-empty, without ':', control characters or unpaired surrogates (not UTF-8)");
  }
  if (typeof password !== "string" || password === "" || notBasic.test(password)) {
    throw new TypeError("basic: the password must be non-empty, without control characters or unpaired surrogates (not UTF-8)");
  }
  return sendable("basic", { authorization: `Basic ${Buffer.from(`${login}:${password}`, "utf8").toString("base64")}` });
}

/** `x-koms-clientid: <id>`: every seed 000 call (Session API, with bearer() once logged in). */
export function clientId(id: string): CredentialHeaders {
  if (typeof id !== "string" || !visibleAscii.test(id)) throw new TypeError("clientId: the client id must be non-empty visible ASCII");
  return sendable("clientId", { [clientIdHeaderName]: id });
}

/**
 * Throws a TypeError naming the first header whose value Headers would refuse, or that is longer
 * than maxHeaderValueBytes, without the value: Headers would refuse it with the value, a secret,
 * in its message. A name that is no token is refused first, and not quoted: Headers would quote
 * it, and a pair given the wrong way round ({ [token]: "authorization" }) has the value, a
 * secret, for its name. `what` says whose headers they are ("credentials", "headers", "bearer"...).
 */
export function checkSendable(entries: Iterable<readonly [string, unknown]>, what: string): void {
  for (const [name, value] of entries) {
    if (!headerName.test(String(name))) throw new TypeError(`${what}: a header name is not a token (RFC 9110 5.1); it is not shown, as it may be a value`);
    const text = String(value);
    if (unsendable.test(text.replace(edgeWhitespace, ""))) throw new TypeError(`${what}: the "${name}" header's value has a line break or control character`);
    if (notByte.test(text)) throw new TypeError(`${what}: the "${name}" header's value has a character past U+00FF, which a header cannot carry`);
    if (text.length > maxHeaderValueBytes) throw new TypeError(`${what}: the "${name}" header's value is longer than Tessera takes (at most ${maxHeaderValueBytes} bytes)`);
  }
}

/**
 * A call's own mistake (a header no request can carry, a timeout that is no number: the
 * TypeError checkSendable or Headers threw) as the call fails with it: a ConnectError like any
 * other failure, INVALID_ARGUMENT, the TypeError its cause. Anything else is `e`.
 */
export function invalidArgument(e: unknown): unknown {
  return e instanceof TypeError ? new ConnectError(e.message, Code.InvalidArgument, undefined, undefined, e) : e;
}

/**
 * A Connect interceptor that adds the credential's headers to every request, except those a
 * call set itself (a per-call credential wins). Once a request is sent they are taken off it
 * again: another attempt of the call (a refused stream sent again) carries the credentials as the
 * source gives them then (a token refreshed meanwhile), not as if the call had set them.
 */
export function credentialInterceptor(source: CredentialSource): Interceptor {
  if (typeof source !== "function" && !isHeaders(source)) throw new TypeError(`credentials: headers (${headerForms}) or a function giving them`);
  return (next) => async (req) => {
    const headers = typeof source === "function" ? await beforeAbort(source(), req.signal) : source;
    const added: string[] = [];
    try {
      if (!isHeaders(headers)) throw new TypeError(`credentials: the function gave no headers (${headerForms})`);
      for (const [name, value] of entriesOf(headers)) {
        // Checked before Headers reads the name: it would quote one that is no token.
        checkSendable([[name, value]], "credentials");
        if (req.header.has(name)) continue;
        req.header.set(name, value);
        added.push(name);
      }
    } catch (e) {
      throw invalidArgument(e);
    }
    try {
      return await next(req);
    } finally {
      for (const name of added) req.header.delete(name);
    }
  };
}

/** What credential headers may be, as the errors refusing anything else say. */
const headerForms = "an object of header names and values, an array of [name, value] pairs, or a Headers";

/**
 * Whether `value` is credential headers: a plain object of names and values, an array of [name,
 * value] pairs (its entries checked as they are read: entriesOf), or a Headers (its entries).
 * Anything else is a mistake: nothing; a string, whose characters Object.entries would give as
 * headers "0", "1"...; a Map or another class's object, whose entries Object.entries does not
 * see (the call would go without its credential).
 */
function isHeaders(value: unknown): value is GivenHeaders {
  if (value instanceof Headers || Array.isArray(value)) return true;
  if (typeof value !== "object" || value === null) return false;
  const prototype = Object.getPrototypeOf(value);
  return prototype === Object.prototype || prototype === null;
}

/**
 * The headers of credentials given as isHeaders takes them. [name, value] pairs are read as
 * `new Headers(pairs)` reads them (a name no header has refused, names in any case, a name given
 * twice sent once with its values joined by ", "), their values checked first: Headers would
 * refuse a line break quoting the value, a secret; and a name that is no token (a pair given
 * as [value, name]) is refused without being quoted.
 */
function entriesOf(headers: GivenHeaders): Iterable<readonly [string, string]> {
  if (headers instanceof Headers) return headers.entries();
  if (!Array.isArray(headers)) return Object.entries(headers);
  const pairs = headers as CredentialPairs;
  pairs.forEach((pair, i) => {
    if (!Array.isArray(pair) || pair.length !== 2) throw new TypeError("credentials: each entry of an array of headers must be a [name, value] pair");
    // Headers would refuse it quoting it: a pair given as [value, name] would show the value.
    if (!headerName.test(String(pair[0]))) throw new TypeError(`credentials: entry ${i} of the array of headers does not begin with a header name (a token, RFC 9110 5.1); it is not shown, as it may be a value`);
  });
  checkSendable(pairs as ReadonlyArray<readonly [string, string]>, "credentials");
  return new Headers(pairs as Array<[string, string]>).entries();
}

/**
 * What `value` resolves to, unless `signal` aborts first: then its reason (the call's
 * DEADLINE_EXCEEDED, or the caller's cancellation). A credential source that never answers (a
 * token service that hangs) does not hold the call past its deadline.
 */
async function beforeAbort<T>(value: T | PromiseLike<T>, signal: AbortSignal): Promise<T> {
  signal.throwIfAborted();
  let onAbort: (() => void) | undefined;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
  });
  try {
    return await Promise.race([value, aborted]);
  } finally {
    signal.removeEventListener("abort", onAbort!);
  }
}
