// @tessera/client: call Tessera, and accept its access tokens in Node services.
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
