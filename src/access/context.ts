// Per-call values the server hands down: who is calling, from where, over which protocol.
import { createContextKey } from "@connectrpc/connect";
import type { Principal } from "./principal.js";

/** The verified caller; set by the access interceptor before the handler runs. */
export const principalKey = createContextKey<Principal>({ kind: "anonymous" }, { description: "tessera principal" });

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

/** The HTTP method of the original request (REST calls reach the router as POST). */
export const httpMethodKey = createContextKey<string>("", { description: "http method" });
