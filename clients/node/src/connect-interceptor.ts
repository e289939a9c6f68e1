// A Connect server interceptor: every call must carry a valid Tessera access token (except the
// procedures allowAnonymous names); the handler reads the principal from its context.
//
//   connectNodeAdapter({ routes, interceptors: [createAuthInterceptor(verifier)] })
//   ...
//   whoAmI(req, ctx) { const p = requirePrincipal(ctx); ... }
import { Code, ConnectError, createContextKey, type HandlerContext, type Interceptor } from "@connectrpc/connect";
import { authenticate, AuthRefusal, type AuthOptions } from "./authenticate.js";
import type { VerifiedToken } from "./verify/claims.js";
import type { TokenVerifier } from "./verify/token-verifier.js";

/** The verified token of the call (undefined for an anonymous call): `ctx.values.get(principalKey)`. */
export const principalKey = createContextKey<VerifiedToken | undefined>(undefined, { description: "the verified Tessera access token" });

const codes = { unauthenticated: Code.Unauthenticated, unavailable: Code.Unavailable, internal: Code.Internal } as const;

export function createAuthInterceptor(verifier: Pick<TokenVerifier, "verify">, options: AuthOptions = {}): Interceptor {
  return (next) => async (req) => {
    const procedure = `/${req.service.typeName}/${req.method.name}`;
    const authorization = req.header.get("authorization");
    try {
      const principal = await authenticate(verifier, authorization === null ? [] : [authorization], procedure, options);
      if (principal) req.contextValues.set(principalKey, principal);
    } catch (e) {
      if (!(e instanceof AuthRefusal)) throw new ConnectError("internal error", Code.Internal);
      const metadata = e.challenge === undefined ? undefined : { "www-authenticate": e.challenge };
      throw new ConnectError(e.message, codes[e.status], metadata);
    }
    return next(req);
  };
}

/** The caller's verified token; UNAUTHENTICATED when the call had none (an allowAnonymous procedure). */
export function requirePrincipal(ctx: HandlerContext): VerifiedToken {
  const principal = ctx.values.get(principalKey);
  if (!principal) throw new ConnectError('missing credential: send "Authorization: Bearer <Tessera access token>"', Code.Unauthenticated);
  return principal;
}
