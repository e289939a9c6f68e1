// A @grpc/grpc-js server interceptor (grpc-js >= 1.14, the peer dependency range; server
// interceptors came in 1.10): every call must carry a valid Tessera access token (except the
// procedures allowAnonymous names) before its handler starts; the
// handler reads the principal with principalOf(call).
//
//   const server = new grpc.Server({ interceptors: [createGrpcJsAuthInterceptor(verifier)] });
//   ...
//   whoAmI(call, callback) { const p = principalOf(call); ... }
//
// grpc-js holds back the request message while the metadata listener works, so verifying
// asynchronously (a key set fetch) is safe; a refused call ends with its status before the
// handler sees anything.
import { Metadata, ServerInterceptingCall, status, type ServerInterceptor } from "@grpc/grpc-js";
import { authenticate, AuthRefusal, type AuthOptions } from "./authenticate.js";
import type { VerifiedToken } from "./verify/claims.js";
import type { TokenVerifier } from "./verify/token-verifier.js";

// The metadata object the interceptor passes on is the one the handler's call holds.
const principals = new WeakMap<Metadata, VerifiedToken>();

const codes = { unauthenticated: status.UNAUTHENTICATED, unavailable: status.UNAVAILABLE, internal: status.INTERNAL } as const;

export function createGrpcJsAuthInterceptor(verifier: Pick<TokenVerifier, "verify">, options: AuthOptions = {}): ServerInterceptor {
  return (method, call) =>
    new ServerInterceptingCall(call, {
      start(next) {
        next({
          onReceiveMetadata(metadata, proceed) {
            const authorization = metadata.get("authorization").map(String);
            authenticate(verifier, authorization, method.path, options).then(
              (principal) => {
                if (principal) principals.set(metadata, principal);
                proceed(metadata);
              },
              (e: unknown) => {
                if (e instanceof AuthRefusal) {
                  const trailers = new Metadata();
                  if (e.challenge !== undefined) trailers.set("www-authenticate", e.challenge);
                  call.sendStatus({ code: codes[e.status], details: e.message, metadata: trailers });
                } else {
                  call.sendStatus({ code: status.INTERNAL, details: "internal error" });
                }
              },
            );
          },
        });
      },
    });
}

/** The verified token of a call (undefined for an anonymous call to an allowAnonymous procedure). */
export function principalOf(call: { readonly metadata: Metadata }): VerifiedToken | undefined {
  return principals.get(call.metadata);
}

export type { AuthOptions } from "./authenticate.js";
export type { VerifiedToken, SessionAccessToken, JwtAccessToken } from "./verify/claims.js";
