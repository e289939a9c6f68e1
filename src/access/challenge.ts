// The one place that decides a 401's WWW-Authenticate challenge. The core only says why a
// credential was refused (a reason); which challenge that makes depends on the method's
// credential scheme, known here from its `tessera.v1.access` option:
//
// - bearer methods (RFC 6750 section 3): plain `Bearer` when no bearer token was presented
//   (none, or a credential of another scheme); `Bearer error="invalid_request"` when the
//   Authorization header is a malformed bearer credential (whatever the call was refused for:
//   a missing client id, checked first, too), or the token came without a valid client id; `Bearer error="invalid_token"` when a token was presented and refused (bad,
//   expired, revoked, not the latest, another client's, its user deactivated, or refused by the
//   handler, e.g. an unknown refresh token beside it).
// - Basic methods (RFC 7617): `Basic realm="tessera", charset="UTF-8"` on every 401.
// - methods without a credential scheme (a client id header, a password in a JSON body or a
//   query, no credential at all): no header — there is no scheme to challenge with.
import type { Reason } from "../core/errors.js";

/** The HTTP authentication scheme a method's credential is presented with. */
export type CredentialScheme = "bearer" | "basic" | "none";

const basicChallenge = 'Basic realm="tessera", charset="UTF-8"';

/**
 * What the request presented as a bearer token: a well-formed one (in the Authorization header
 * or a token field), the Bearer scheme without one token, or neither.
 */
export type BearerPresented = "token" | "malformed" | "none";

/** The WWW-Authenticate value of a 401, or undefined when none belongs on it. */
export function challenge(scheme: CredentialScheme, bearer: BearerPresented, reason: Reason): string | undefined {
  switch (scheme) {
    case "none":
      return undefined;
    case "basic":
      return basicChallenge;
    case "bearer":
      if (reason === "MALFORMED_CREDENTIAL" || bearer === "malformed") return 'Bearer error="invalid_request"';
      if (bearer === "none") return "Bearer";
      if (reason === "MISSING_CLIENT_ID" || reason === "UNKNOWN_CLIENT_ID") return 'Bearer error="invalid_request"';
      return 'Bearer error="invalid_token"';
  }
}
