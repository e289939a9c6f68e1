// The OpenID Connect discovery document (OpenID Connect Discovery 1.0, section 3), saying only
// what is true of Tessera: it signs JWTs and publishes their keys, but it is no OAuth 2.0
// authorization server. The members the spec requires are present; where an absent member
// would imply a default that is untrue (grant types, response modes, request_uri support), the
// member is present and says so.
import type { SigningAlg } from "./key-ring.js";

/** Every claim Tessera's JWTs may carry (session access tokens and seed 004 tokens). */
export const claimsSupported = ["iss", "sub", "aud", "exp", "iat", "nbf", "jti", "sid", "user", "token_type", "authentication_method", "credential_epoch", "source_kids"] as const;

export interface OpenIdConfiguration {
  issuer: string;
  jwksUri: string;
  idTokenSigningAlgValuesSupported: string[];
  responseTypesSupported: string[];
  subjectTypesSupported: string[];
  grantTypesSupported: string[];
  responseModesSupported: string[];
  claimsSupported: string[];
  requestUriParameterSupported: boolean;
}

/** The JWKS path, under the public URL or the request's origin. */
export const jwksPath = "/.well-known/jwks.json";

/**
 * `issuer`: the `iss` of every token (TESSERA_PUBLIC_URL when set); `baseUrl`: where clients
 * reach Tessera (the public URL, or the request's origin without one).
 */
export function openIdConfiguration(o: { issuer: string; baseUrl: string; alg: SigningAlg }): OpenIdConfiguration {
  return {
    issuer: o.issuer,
    jwksUri: `${o.baseUrl}${jwksPath}`,
    idTokenSigningAlgValuesSupported: [o.alg],
    responseTypesSupported: [],
    subjectTypesSupported: ["public"],
    grantTypesSupported: [],
    responseModesSupported: [],
    claimsSupported: [...claimsSupported],
    requestUriParameterSupported: false,
  };
}
