// Per-call values the server hands down: who is calling, from where, over which protocol.
import { createContextKey, type ContextValues } from "@connectrpc/connect";
import { unauthenticated } from "../core/errors.js";
import { signalAborted } from "../call-scope.js";
import type { Principal, PrincipalOf } from "./principal.js";

/** The verified caller; set by the access interceptor before the handler runs. */
export const principalKey = createContextKey<Principal>({ kind: "anonymous" }, { description: "tessera principal" });

/**
 * The call's principal, narrowed to one of `kinds`. The access interceptor has already enforced
 * the method's credential, so a mismatch means the proto's access option and the handler
 * disagree: it is refused like a missing credential.
 */
export function requirePrincipal<K extends Principal["kind"]>(ctx: { values: ContextValues }, ...kinds: K[]): PrincipalOf<K> {
  const principal = ctx.values.get(principalKey);
  if ((kinds as readonly string[]).includes(principal.kind)) return principal as PrincipalOf<K>;
  throw unauthenticated("MISSING_CREDENTIAL", "credential required");
}

/** The client's network address (for login abuse protection). */
export const clientAddressKey = createContextKey<string>("unknown", { description: "client address" });

/** "rest" for transcoded JSON/HTTP calls; otherwise derived from the content type. */
export const protocolKey = createContextKey<string>("", { description: "protocol" });

/** True when the connection is TLS (the session cookie is then Secure). */
export const secureKey = createContextKey<boolean>(false, { description: "tls" });

/**
 * The WWW-Authenticate challenge for a 401 of this call, set by the access interceptor (the one
 * place that decides it) and sent by the error interceptor with the error.
 */
export const challengeKey = createContextKey<string | undefined>(undefined, { description: "www-authenticate challenge" });

/**
 * Marks the call's answer cacheable (`value`: its Cache-Control), unless the call has already
 * ended: past its deadline (or with its caller gone) it was answered with that error while the
 * handler went on, and an error is never cacheable (a shared cache would serve one caller's
 * `connect-timeout-ms: 0` to everyone).
 */
export function cacheable(ctx: { responseHeader: Headers; signal: AbortSignal }, value: string): void {
  if (!signalAborted(ctx)) ctx.responseHeader.set("cache-control", value);
}

/** The HTTP method of the original request (REST calls reach the router as POST). */
export const httpMethodKey = createContextKey<string>("", { description: "http method" });

/**
 * The token a CREDENTIAL_NONE method with a `token_field` was given (that field, or the bearer
 * token when the field is empty; two different ones are refused): unverified, for the handler.
 */
export const presentedTokenKey = createContextKey<string | undefined>(undefined, { description: "presented token" });

/**
 * Headers the call's answer carries whatever its outcome, success or error, in the HTTP response
 * headers of every protocol (never in a gRPC trailer or a gRPC-Web trailer envelope, which no
 * browser reads as headers): the session cookie's `Set-Cookie` (session-cookie.ts). Interceptors
 * add them (answerHeaders); the dispatcher writes them with the answer (addAnswerHeaders).
 */
const answerHeadersKey = createContextKey<Headers | undefined>(undefined, { description: "answer headers" });

/** The call's answer headers, to add to. */
export function answerHeaders(values: ContextValues): Headers {
  let headers = values.get(answerHeadersKey);
  if (headers === undefined) values.set(answerHeadersKey, (headers = new Headers()));
  return headers;
}

/** Adds the call's answer headers to `header`, the answer's HTTP headers (each value appended: a Set-Cookie per line). */
export function addAnswerHeaders(values: ContextValues | undefined, header: Headers | undefined): void {
  const extra = values?.get(answerHeadersKey);
  if (extra === undefined || header === undefined) return;
  extra.forEach((value, name) => header.append(name, value));
}
