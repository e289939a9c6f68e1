// @tessera/client: call Tessera, and accept its access tokens in Node services.
// The @grpc/grpc-js server interceptor is in "@tessera/client/grpc-js" (grpc-js is optional).
export { createTesseraClient, createTesseraTransport, type Protocol, type TesseraClient, type TesseraTransport, type TesseraTransportOptions } from "./client.js";
export { basic, bearer, clientId, clientIdHeaderName, credentialInterceptor, type CredentialHeaders, type CredentialPairs, type CredentialSource } from "./credentials.js";
export { errorReason, retryAfterSeconds } from "./error-reason.js";
export * from "./services.js";

export { createTokenVerifier, type TokenVerifier, type TokenVerifierOptions } from "./verify/token-verifier.js";
export { TokenVerificationError, TokenErrorCodes, type TokenErrorCode } from "./verify/errors.js";
export { supportedAlgorithms, type Algorithm } from "./verify/jwk.js";
export type {
  AuthenticationMethod,
  JwtAccessClaims,
  JwtAccessToken,
  SessionAccessClaims,
  SessionAccessToken,
  VerifiedToken,
} from "./verify/claims.js";

export { createAuthInterceptor, principalKey, requirePrincipal } from "./connect-interceptor.js";
export type { AuthOptions } from "./authenticate.js";
