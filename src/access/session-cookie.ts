// The seed 003 session cookie, both ways: reading the one a browser presents, and setting or
// clearing it on an answer. Services say what should happen to the cookie (a typed request in
// the call's context values); the interceptor below is the one place that decides `Set-Cookie`,
// and the dispatcher writes it in the answer's headers on every HTTP protocol (a browser may
// call through REST, Connect or gRPC-Web), on an error too (answerHeaders).
import type { DescMethod } from "@bufbuild/protobuf";
import { createContextKey, type ContextValues, type Interceptor } from "@connectrpc/connect";
import { permissionDenied } from "../core/errors.js";
import { answerHeaders, secureKey } from "./context.js";
import { cookieValue } from "./credentials.js";

export const sessionCookieName = "tessera_session";

/** A cookie session to hand the browser; `maxAgeSeconds: 0` clears the cookie. */
export interface SessionCookie {
  readonly value: string;
  readonly maxAgeSeconds: number;
}

const setSessionCookieKey = createContextKey<SessionCookie | undefined>(undefined, { description: "session cookie to set" });

/** The session cookie is the call's credential, let through by the origin check (cookieTaken). */
const cookieTakenKey = createContextKey<boolean>(false, { description: "session cookie taken as the credential" });

const cleared: SessionCookie = { value: "", maxAgeSeconds: 0 };

/**
 * The session cookie the request carries, if any: `tessera_session=` carries one, empty, which is
 * taken as any other value that is no session (401 INVALID_TOKEN; a cookie logout clears it),
 * never as a request without the cookie.
 */
export function presentedSessionCookie(headers: Headers): string | undefined {
  return cookieValue(headers, sessionCookieName);
}

/**
 * Refuses a state-changing call the session cookie would authenticate when a browser sent it
 * from a page of another origin (cross-site request forgery). SameSite=Lax keeps the cookie off
 * a cross-site POST, not off one from another origin of the same site (a sibling subdomain's
 * page), and a form or text/plain body needs no preflight. Taken: a page of `host` (the
 * request's own host and port) or of one of `trustedOrigins` (the listed TESSERA_CORS_ORIGINS,
 * TESSERA_PUBLIC_URL's), and a request from no page at all (neither `Origin` nor
 * `Sec-Fetch-Site`: a script, curl). `Sec-Fetch-Site`, which a page cannot forge, decides when
 * the origin is not a trusted one: `same-origin` also behind a proxy that rewrites `Host`.
 * `overHttps`: the server is reached over https (TLS here, TESSERA_COOKIE_SECURE=true for a
 * proxy in front that ends TLS, or an https TESSERA_PUBLIC_URL); its own origin is then
 * https://<host>, and a page of http://<host> (which a network attacker can write, and whose
 * POST SameSite=Lax lets carry the cookie where a browser does not tell schemes apart) is
 * another origin.
 */
export function refuseCrossOriginCookie(headers: Headers, host: string, trustedOrigins: ReadonlySet<string>, overHttps: boolean): void {
  const origin = headers.get("origin")?.toLowerCase();
  if (origin !== undefined && trustedOrigins.has(origin)) return;
  const site = headers.get("sec-fetch-site")?.toLowerCase();
  const fromHere =
    site !== undefined ? site === "same-origin" || site === "none" : origin === undefined || namesHost(origin, host.toLowerCase(), overHttps);
  if (!fromHere) {
    throw permissionDenied(
      "ORIGIN_NOT_ALLOWED",
      `the ${sessionCookieName} cookie is not accepted on a POST from another origin's page: only from this server's own origin or one TESSERA_CORS_ORIGINS lists`,
    );
  }
}

/**
 * Whether a serialized origin (`null`, or no URL: never) has `host` as its host and port, the
 * default port of its scheme written out or not: a proxy in front that ends TLS may write Host
 * as "auth.example.com:443", the page's origin https://auth.example.com. Over https
 * (`overHttps`), only an https origin is this server's.
 */
function namesHost(origin: string, host: string, overHttps: boolean): boolean {
  let url: URL;
  try {
    url = new URL(origin);
  } catch {
    return false;
  }
  if (overHttps && url.protocol !== "https:") return false;
  if (url.host === host) return true;
  const defaultPort = url.protocol === "https:" ? "443" : url.protocol === "http:" ? "80" : undefined;
  return url.port === "" && defaultPort !== undefined && `${url.host}:${defaultPort}` === host;
}

/**
 * Records that the request's session cookie is the call's credential: it is about to be verified,
 * and a state-changing call's origin check (refuseCrossOriginCookie) has let it through. A method
 * that ends the cookie session then clears the cookie whatever its answer.
 */
export function cookieTaken(values: ContextValues): void {
  values.set(cookieTakenKey, true);
}

/** Asks for the session cookie to be set on this call's answer (cleared when maxAgeSeconds is 0). */
export function issueSessionCookie(values: ContextValues, cookie: SessionCookie): void {
  values.set(setSessionCookieKey, cookie);
}

/** `tessera_session=<value>; Path=/; Max-Age=<n>; HttpOnly; SameSite=Lax[; Secure]`. */
export function formatSessionCookie(cookie: SessionCookie, secure: boolean): string {
  return `${sessionCookieName}=${cookie.value}; Path=/; Max-Age=${cookie.maxAgeSeconds}; HttpOnly; SameSite=Lax${secure ? "; Secure" : ""}`;
}

/**
 * Decides the answer's `Set-Cookie`: on a success, the one the handler asked for
 * (issueSessionCookie); on any answer of a method of `ending` (POST /auth/logout) whose
 * credential was the cookie (cookieTaken), the cookie cleared, whatever the status: a logout is
 * the call whose purpose is to end the browser's session, and one refused because that session
 * has already ended (expired, logged out elsewhere, revoked), or with a value that is no session,
 * must not leave the browser holding a dead cookie. A logout the origin check refused never took
 * the cookie, and leaves it: a page of another origin cannot log the user out. Placed first in
 * the chain, so that it sees every error of the call, the deadline's included; the line goes out
 * in the answer's headers in every protocol (answerHeaders). `secure` is TESSERA_COOKIE_SECURE
 * (true also when unset with an https TESSERA_PUBLIC_URL): when set it wins (a TLS-terminating
 * proxy in front); unset, the cookie is Secure under TLS.
 */
export function createSessionCookieInterceptor(secure: boolean | undefined, ending: readonly DescMethod[]): Interceptor {
  const ends = new Set(ending);
  return (next) => async (req) => {
    const values = req.contextValues;
    const write = (cookie: SessionCookie) => answerHeaders(values).append("set-cookie", formatSessionCookie(cookie, secure ?? values.get(secureKey)));
    const endsCookie = () => ends.has(req.method) && values.get(cookieTakenKey);
    const res = await next(req).catch((e: unknown) => {
      if (endsCookie()) write(cleared);
      throw e;
    });
    const cookie = endsCookie() ? cleared : values.get(setSessionCookieKey);
    if (cookie !== undefined) write(cookie);
    return res;
  };
}
