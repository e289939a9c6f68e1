// Parsing credentials out of request headers. Only syntax lives here: verification is the
// core's job. Nothing here echoes a credential in an error message.
import { invalidArgument, unauthenticated } from "../core/errors.js";

const bearerPattern = /^Bearer[ ]+([^\s]+)\s*$/i;

/** Whether the request presents a well-formed bearer token (never throws). */
export function presentsBearerToken(headers: Headers): boolean {
  const value = headers.get("authorization");
  return value !== null && bearerPattern.test(value);
}

const bearerScheme = /^Bearer(\s|$)/i;

/** Whether the Authorization header uses the Bearer scheme, well-formed or not (never throws). */
export function usesBearerScheme(headers: Headers): boolean {
  const value = headers.get("authorization");
  return value !== null && bearerScheme.test(value);
}

/** The bearer token of an Authorization header, or undefined when there is none. */
export function bearerToken(headers: Headers): string | undefined {
  const value = headers.get("authorization");
  if (value === null) return undefined;
  const m = bearerPattern.exec(value);
  if (!m) {
    // "Bearer" with no or several tokens is a malformed bearer credential; another scheme is
    // a credential this method does not take.
    const reason = bearerScheme.test(value) ? "MALFORMED_CREDENTIAL" : "UNSUPPORTED_CREDENTIAL";
    throw unauthenticated(reason, "the Authorization header must be \"Bearer <token>\"");
  }
  return m[1];
}

const malformed = (message: string) => invalidArgument("MALFORMED_CREDENTIAL", message);

// Base64 as RFC 7617 takes it (RFC 4648 section 4): whole groups of four characters, the last
// padded with "=". Node's decoder takes any run of the alphabet and drops what does not fit, so
// without this check credentials left unpadded, padded where none belongs, or with a character
// too many logged in as the credentials they hold, where a proxy or filter in front that decodes
// them (Go's net/http, Python's base64) refuses them.
const paddedBase64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** HTTP Basic credentials (RFC 7617, UTF-8). Malformed -> INVALID_ARGUMENT naming the problem. */
export function basicCredentials(headers: Headers): { login: string; password: string } | undefined {
  const value = headers.get("authorization");
  if (value === null) return undefined;
  const m = /^Basic[ ]+([A-Za-z0-9+/]+={0,2})\s*$/i.exec(value);
  if (!m) {
    if (/^Basic\b/i.test(value)) throw malformed("malformed Basic credentials: expected base64(login:password)");
    throw unauthenticated("UNSUPPORTED_CREDENTIAL", "HTTP Basic credentials required");
  }
  if (!paddedBase64.test(m[1])) throw malformed("malformed Basic credentials: not padded base64 (RFC 4648)");
  const bytes = Buffer.from(m[1], "base64");
  let decoded: string;
  try {
    decoded = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw malformed("malformed Basic credentials: not valid UTF-8");
  }
  const colon = decoded.indexOf(":");
  if (colon < 0) throw malformed("malformed Basic credentials: no ':' between login and password");
  const login = decoded.slice(0, colon);
  const password = decoded.slice(colon + 1);
  if (login.length === 0) throw malformed("malformed Basic credentials: empty login");
  if (password.length === 0) throw malformed("malformed Basic credentials: empty password");
  return { login, password };
}

/**
 * The value of one cookie, or undefined. A cookie named twice is a malformed credential
 * (INVALID_ARGUMENT): another host of the domain may have set the second (cookie tossing), and
 * which one a browser sends first is not the site's to choose.
 */
export function cookieValue(headers: Headers, name: string): string | undefined {
  const header = headers.get("cookie");
  if (!header) return undefined;
  let value: string | undefined;
  for (const part of header.split(";")) {
    const eq = part.indexOf("=");
    if (eq < 0 || part.slice(0, eq).trim() !== name) continue;
    if (value !== undefined) throw malformed(`the ${name} cookie appears more than once`);
    value = part.slice(eq + 1).trim();
  }
  return value;
}

export const clientIdHeader = "x-koms-clientid";
