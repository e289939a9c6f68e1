// The credential of each method (`tessera.options.v1.access`) as OpenAPI security: one scheme
// per kind of credential, and the requirements of a route (alternatives; within one, all).
// The mapping mirrors what src/access/interceptor.ts accepts for each credential.
import { Credential, type AccessRule } from "../../gen/tessera/options/v1/options_pb.js";
import { clientIdHeader } from "../access/credentials.js";
import { schemeOf } from "../access/interceptor.js";
import { sessionCookieName } from "../access/session-cookie.js";

export type SecurityRequirement = Record<string, string[]>;

export const securitySchemes = {
  clientId: {
    type: "apiKey",
    in: "header",
    name: clientIdHeader,
    description: "A configured client id (TESSERA_CLIENT_IDS), sent once: two, or a comma list, are 400 `MALFORMED_CREDENTIAL`. Seed 000 sessions are bound to the client that created them.",
  },
  sessionAccessToken: {
    type: "http",
    scheme: "bearer",
    bearerFormat: "JWT",
    description: "A seed 000 access token (`POST /session`), presented with the `x-koms-clientid` of its session.",
  },
  apiToken: {
    type: "http",
    scheme: "bearer",
    bearerFormat: "tsr_<38 base62 characters>",
    description: "A seed 001 API token (`POST /v1/frontend/auth`).",
  },
  userToken: {
    type: "http",
    scheme: "bearer",
    bearerFormat: "UUID",
    description: "A seed 002 user token (`POST /auth/login`).",
  },
  jwtAccessToken: {
    type: "http",
    scheme: "bearer",
    bearerFormat: "JWT",
    description: "A seed 004 access token (`GET /jwt/token`).",
  },
  jwtAccessTokenArgument: {
    type: "apiKey",
    in: "query",
    name: "access_token",
    description: "A seed 004 access token as the `access_token` argument (query, form or JSON body) instead of the Authorization header.",
  },
  adminToken: {
    type: "http",
    scheme: "bearer",
    description: "The admin credential (TESSERA_ADMIN_TOKEN), for trusted internal callers.",
  },
  basic: {
    type: "http",
    scheme: "basic",
    description: "HTTP Basic: the user's login (email) and password, UTF-8 (RFC 7617).",
  },
  sessionCookie: {
    type: "apiKey",
    in: "cookie",
    name: sessionCookieName,
    description: "The login session set by seed 003's token exchange (`GET /api/authenticationtoken/{token}/user`); taken on GET and HEAD, and by `POST /auth/logout`, which ends it (sent from a page of this server's origin or one TESSERA_CORS_ORIGINS lists: from another, 403 ORIGIN_NOT_ALLOWED).",
  },
} as const;

type SchemeName = keyof typeof securitySchemes;

const session: SecurityRequirement = { sessionAccessToken: [], clientId: [] };
const only = (name: SchemeName): SecurityRequirement => ({ [name]: [] });

/**
 * The security requirements of a route. `tokenArgument`: whether the method's token field can be
 * given as an argument on this route.
 */
export function securityOf(rule: AccessRule, httpMethod: string, tokenArgument: boolean): SecurityRequirement[] {
  const requirements = ((): SecurityRequirement[] => {
    switch (rule.credential) {
      case Credential.NONE:
        return [];
      case Credential.CLIENT_ID:
        return [only("clientId")];
      case Credential.SESSION:
      case Credential.SESSION_EXPIRED_OK:
        return [session];
      case Credential.API_TOKEN:
        return [only("apiToken")];
      case Credential.USER_TOKEN:
        return [only("userToken"), ...(rule.sessionCookie ? [only("sessionCookie")] : [])];
      case Credential.USER:
        // The cookie is accepted on safe methods only.
        return [session, only("userToken"), only("jwtAccessToken"), ...(httpMethod === "GET" ? [only("sessionCookie")] : [])];
      case Credential.JWT:
      case Credential.JWT_PASSWORD:
        return [only("jwtAccessToken"), ...(tokenArgument ? [only("jwtAccessTokenArgument")] : [])];
      case Credential.BASIC:
        return [only("basic")];
      case Credential.ADMIN:
        return [only("adminToken")];
      default:
        throw new Error(`no security scheme for credential ${rule.credential}`);
    }
  })();
  // An optional credential: the route also answers without one.
  return rule.optional && requirements.length > 0 ? [...requirements, {}] : requirements;
}

/**
 * An example of the `WWW-Authenticate` challenge a 401 of this credential carries, or undefined
 * when its 401s carry none (a client id, a password in the body or query: no scheme to challenge).
 */
export function challengeOf(rule: AccessRule): string | undefined {
  switch (schemeOf(rule.credential)) {
    case "bearer":
      // An optional credential is refused only malformed (a token not valid is none given).
      return rule.optional ? 'Bearer error="invalid_request"' : 'Bearer error="invalid_token"';
    case "basic":
      return 'Basic realm="tessera", charset="UTF-8"';
    case "none":
      return undefined;
  }
}

/** The `buf curl` header flags that present the credential. */
export function bufCurlHeaders(rule: AccessRule): string[] {
  const client = `-H "${clientIdHeader}: $CLIENT_ID"`;
  const bearer = (v: string) => `-H "authorization: Bearer $${v}"`;
  switch (rule.credential) {
    case Credential.CLIENT_ID:
      return [client];
    case Credential.SESSION:
    case Credential.SESSION_EXPIRED_OK:
      return [client, bearer("ACCESS_TOKEN")];
    case Credential.API_TOKEN:
      return [bearer("API_TOKEN")];
    case Credential.USER_TOKEN:
    case Credential.USER:
      return [bearer("USER_TOKEN")];
    case Credential.JWT:
    case Credential.JWT_PASSWORD:
      return [bearer("JWT")];
    case Credential.BASIC:
      return [`-H "authorization: Basic $(printf '%s' "$LOGIN:$PASSWORD" | base64 | tr -d '\\n')"`];
    case Credential.ADMIN:
      return [bearer("TESSERA_ADMIN_TOKEN")];
    default:
      return [];
  }
}
