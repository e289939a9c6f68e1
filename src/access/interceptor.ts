// The one place where credentials are enforced. Each Tessera method declares in its proto
// (`tessera.options.v1.access`) which credential it takes; this interceptor reads that option, extracts
// and verifies the credential, and hands the handler a typed principal through
// `principalKey`. Handlers never parse Authorization headers themselves. It also wraps the
// handler, so that every 401 of the call, the handler's own included, gets the challenge of the
// method's credential scheme (challenge.ts).
import { getOption, hasOption, type DescMethod, type DescService } from "@bufbuild/protobuf";
import type { ContextValues, Interceptor } from "@connectrpc/connect";
import { decodeJwt } from "jose";
import { access, Credential, type AccessRule } from "../../gen/tessera/options/v1/options_pb.js";
import { AuthError, invalidArgument, permissionDenied, recode, unauthenticated } from "../core/errors.js";
import { secretMatcher } from "../core/secrets.js";
import { withoutTrailingSlashes } from "../core/text.js";
import { challenge, type CredentialScheme } from "./challenge.js";
import { challengeKey, httpMethodKey, presentedTokenKey, principalKey } from "./context.js";
import { basicCredentials, bearerToken, clientIdHeader, presentsBearerToken, usesBearerScheme } from "./credentials.js";
import { cookieTaken, presentedSessionCookie, refuseCrossOriginCookie } from "./session-cookie.js";
import type {
  ApiTokenPrincipal,
  CookiePrincipal,
  JwtPrincipal,
  Principal,
  SessionPrincipal,
  UserTokenPrincipal,
} from "./principal.js";

/** Verification of each credential kind; the core provides the implementations. */
export interface CredentialVerifiers {
  /** Seed 000 access JWT bound to `clientId`; must be the session's most recent token. */
  session(token: string, clientId: string, allowExpired: boolean): Promise<SessionPrincipal>;
  apiToken(token: string): Promise<ApiTokenPrincipal>;
  userToken(token: string): Promise<UserTokenPrincipal>;
  /** Seed 004 access JWT. */
  jwt(token: string): Promise<JwtPrincipal>;
  /** The seed 003 session cookie. */
  sessionCookie(value: string): Promise<CookiePrincipal>;
}

export interface AccessOptions {
  verifiers: CredentialVerifiers;
  clientIds: readonly string[];
  adminToken: string;
  /** Tessera services: every method must carry the access option (fail closed at start-up). */
  services: readonly DescService[];
  /** Infrastructure services that are public (health, reflection). */
  publicServices: readonly DescService[];
  /** Origins whose pages may make a state-changing call with the session cookie, besides the server's own. */
  cookieOrigins?: readonly string[];
  /** Whether the server is reached over https: its own origin is then https://<Host> alone (refuseCrossOriginCookie). */
  overHttps?: boolean;
}

/** The refusal of an `x-koms-clientid` that names more than one client. */
const clientIdList = `the ${clientIdHeader} header names more than one client (it was sent more than once, or holds a comma list): it must name one`;

function isJwtShaped(token: string): boolean {
  return /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/.test(token);
}

/**
 * A JWT-shaped token sent without `x-koms-clientid` is verified as a seed 004 access token. A
 * session access token (seed 000) then fails on its audience (its `aud` is its client id): the
 * refusal keeps its code and reason (401, WRONG_AUDIENCE) but names the missing header. The
 * audience is checked after the signature, so the claims read here are the key store's own.
 */
function withoutClientId(e: unknown, token: string): unknown {
  if (!(e instanceof AuthError) || e.reason !== "WRONG_AUDIENCE") return e;
  let sid: unknown;
  try {
    sid = decodeJwt(token).sid;
  } catch {
    return e;
  }
  if (typeof sid !== "string") return e;
  return unauthenticated("WRONG_AUDIENCE", `missing ${clientIdHeader} header: a session access token is accepted only with the client id it was issued to`, { cause: e });
}

/** Reads and checks every method's rule once; throws when a Tessera method has none. */
export function accessRules(options: Pick<AccessOptions, "services" | "publicServices">): Map<string, AccessRule | "public"> {
  const rules = new Map<string, AccessRule | "public">();
  for (const s of options.publicServices) for (const m of s.methods) rules.set(methodPath(m), "public");
  for (const s of options.services) for (const m of s.methods) rules.set(methodPath(m), accessRule(m));
  return rules;
}

/**
 * A method's checked rule, read from its options once per method: a start reads every rule three
 * times (the access interceptor, the admin gate, the admin audit), and decoding the option from
 * the descriptor each time cost it about a millisecond or two. Rules are only read.
 */
function accessRule(m: DescMethod): AccessRule {
  let rule = checkedRules.get(m);
  if (rule !== undefined) return rule;
  const s = m.parent;
  if (!hasOption(m, access)) throw new Error(`${s.typeName}.${m.name} has no (tessera.options.v1.access) option`);
  rule = getOption(m, access);
  if (rule.credential === Credential.UNSPECIFIED) {
    throw new Error(`${s.typeName}.${m.name}: (tessera.options.v1.access).credential is unspecified`);
  }
  const { tokenField } = rule;
  if (tokenField && !m.input.fields.some((f) => f.name === tokenField)) {
    throw new Error(`${s.typeName}.${m.name}: token_field "${tokenField}" is not a field of ${m.input.typeName}`);
  }
  checkedRules.set(m, rule);
  return rule;
}
const checkedRules = new WeakMap<DescMethod, AccessRule>();

function methodPath(m: DescMethod): string {
  return `${m.parent.typeName}/${m.name}`;
}

/** How each credential is presented over HTTP (what a 401 challenges for). */
export function schemeOf(credential: Credential): CredentialScheme {
  switch (credential) {
    case Credential.SESSION:
    case Credential.SESSION_EXPIRED_OK:
    case Credential.API_TOKEN:
    case Credential.USER_TOKEN:
    case Credential.JWT:
    case Credential.JWT_PASSWORD:
    case Credential.USER:
    case Credential.ADMIN:
      return "bearer";
    case Credential.BASIC:
      return "basic";
    default:
      return "none";
  }
}

export function createAccessInterceptor(options: AccessOptions): Interceptor {
  const rules = accessRules(options);
  const knownClientId = secretMatcher(options.clientIds);
  const isAdminToken = secretMatcher([options.adminToken]);
  const { verifiers } = options;
  // As a browser sends them, as CORS matches them: TESSERA_CORS_ORIGINS takes "https://app.example/".
  const cookieOrigins = new Set((options.cookieOrigins ?? []).map((o) => withoutTrailingSlashes(o).toLowerCase()));
  const overHttps = options.overHttps ?? false;

  const requireClientId = (header: Headers): string => {
    const id = header.get(clientIdHeader);
    if (id === null || id === "") throw unauthenticated("MISSING_CLIENT_ID", `missing ${clientIdHeader} header`);
    // A field that is no list is sent once (RFC 9110 5.3): Node joins two lines with ", ", and a
    // client id has no comma (TESSERA_CLIENT_IDS is a comma list). Which client is meant is not
    // Tessera's to choose, nor a proxy's in front, which may have read another one: refused as
    // a malformed request, not as an unknown client.
    if (id.includes(",")) throw invalidArgument("MALFORMED_CREDENTIAL", clientIdList);
    // Client ids are not secrets, but compare in constant time anyway: it costs nothing.
    if (!knownClientId(id)) throw unauthenticated("UNKNOWN_CLIENT_ID", `unknown ${clientIdHeader}`);
    return id;
  };

  const tokenField = (rule: AccessRule, method: DescMethod, message: unknown): string | undefined => {
    if (!rule.tokenField) return undefined;
    const field = method.input.fields.find((f) => f.name === rule.tokenField)!;
    const value = (message as Record<string, unknown> | undefined)?.[field.localName];
    return typeof value === "string" && value !== "" ? value : undefined;
  };

  const tokenFrom = (rule: AccessRule, method: DescMethod, header: Headers, message: unknown): string | undefined => {
    if (!rule.tokenField) return bearerToken(header);
    const fromField = tokenField(rule, method, message);
    // With the token in its field, an Authorization of another scheme (a gateway's own Basic
    // credentials) is no second token: only a Bearer one can conflict with it.
    const fromHeader = fromField !== undefined && !usesBearerScheme(header) ? undefined : bearerToken(header);
    if (fromHeader !== undefined && fromField !== undefined && fromHeader !== fromField) {
      const description = `two different access tokens in one request (Authorization header and ${rule.tokenField})`;
      throw invalidArgument("CONFLICTING_TOKENS", description, { fieldViolations: [{ field: rule.tokenField, description }] });
    }
    return fromHeader ?? fromField;
  };

  // The bearer token of a method that also takes the session cookie (`cookie`: on this call):
  // an Authorization of another scheme beside the cookie is no bearer token, and leaves the
  // cookie as the credential (undefined), as the header's absence would. A browser that answered
  // POST /auth/login's Basic challenge keeps sending those Basic credentials under /auth/ (RFC
  // 7617 2.2), POST /auth/logout's cookie beside them. Read only when the header is refused.
  const bearerBesideCookie = (header: Headers, cookie: boolean): string | undefined => {
    try {
      return bearerToken(header);
    } catch (e) {
      if (cookie && e instanceof AuthError && e.reason === "UNSUPPORTED_CREDENTIAL" && presentedSessionCookie(header) !== undefined) return undefined;
      throw e;
    }
  };

  // A method that takes no credential but a token to look at (Check) reads the token as an
  // argument: an Authorization header that is not "Bearer <token>" is a bad argument
  // (INVALID_ARGUMENT, as every other problem of that token), not a refused credential.
  const argumentToken = (rule: AccessRule, method: DescMethod, header: Headers, message: unknown): string | undefined => {
    try {
      return tokenFrom(rule, method, header, message);
    } catch (e) {
      if (e instanceof AuthError && e.code === "unauthenticated") throw recode(e, "invalid_argument");
      throw e;
    }
  };

  const verify = async (
    rule: AccessRule,
    method: DescMethod,
    header: Headers,
    message: unknown,
    httpMethod: string,
    url: string,
    values: ContextValues,
  ): Promise<Principal> => {
    switch (rule.credential) {
      case Credential.NONE:
        return { kind: "anonymous" };
      case Credential.CLIENT_ID:
        return { kind: "client", clientId: requireClientId(header) };
      case Credential.SESSION:
      case Credential.SESSION_EXPIRED_OK: {
        const clientId = requireClientId(header);
        const token = bearerToken(header);
        if (!token) throw unauthenticated("MISSING_CREDENTIAL", "missing bearer access token");
        return verifiers.session(token, clientId, rule.credential === Credential.SESSION_EXPIRED_OK);
      }
      case Credential.API_TOKEN: {
        const token = bearerToken(header);
        if (!token) throw unauthenticated("MISSING_CREDENTIAL", "missing bearer API token");
        return verifiers.apiToken(token);
      }
      case Credential.USER_TOKEN: {
        const token = bearerBesideCookie(header, rule.sessionCookie);
        if (!token && rule.sessionCookie) {
          const cookie = presentedSessionCookie(header);
          if (cookie !== undefined) {
            if (httpMethod !== "GET" && httpMethod !== "HEAD") refuseCrossOriginCookie(header, new URL(url).host, cookieOrigins, overHttps);
            cookieTaken(values);
            return verifiers.sessionCookie(cookie);
          }
        }
        if (!token) throw unauthenticated("MISSING_CREDENTIAL", "missing bearer user token");
        return verifiers.userToken(token);
      }
      case Credential.JWT:
      case Credential.JWT_PASSWORD: {
        const token = tokenFrom(rule, method, header, message);
        if (!token) throw unauthenticated("MISSING_CREDENTIAL", "missing access token");
        const p = await verifiers.jwt(token);
        if (rule.credential === Credential.JWT_PASSWORD && p.authenticationMethod !== "password") {
          throw permissionDenied("PASSWORD_LOGIN_REQUIRED", "password authentication required: this token came from a refresh token");
        }
        return p;
      }
      case Credential.USER: {
        // The session cookie counts here on GET and HEAD only (reads: no cross-origin check).
        const cookieCounts = httpMethod === "GET" || httpMethod === "HEAD";
        const token = bearerBesideCookie(header, cookieCounts);
        if (token) {
          if (!isJwtShaped(token)) return verifiers.userToken(token);
          if (header.get(clientIdHeader) !== null) return verifiers.session(token, requireClientId(header), false);
          try {
            return await verifiers.jwt(token);
          } catch (e) {
            throw withoutClientId(e, token);
          }
        }
        if (cookieCounts) {
          const cookie = presentedSessionCookie(header);
          if (cookie !== undefined) return verifiers.sessionCookie(cookie);
        }
        throw unauthenticated("MISSING_CREDENTIAL", "missing credential");
      }
      case Credential.BASIC: {
        const creds = basicCredentials(header);
        if (!creds) throw unauthenticated("MISSING_CREDENTIAL", "HTTP Basic credentials required");
        return { kind: "basic", ...creds };
      }
      case Credential.ADMIN: {
        const token = bearerToken(header);
        if (!token) throw unauthenticated("MISSING_CREDENTIAL", "admin credential required");
        if (!isAdminToken(token)) throw unauthenticated("INVALID_TOKEN", "admin credential required");
        return { kind: "admin" };
      }
      default:
        throw unauthenticated("NO_ACCESS_RULE", "method not accessible");
    }
  };

  return (next) => async (req) => {
    const rule = rules.get(methodPath(req.method));
    if (rule === undefined) throw unauthenticated("NO_ACCESS_RULE", "method not accessible"); // fail closed
    if (rule === "public") return next(req);
    const message = req.stream ? undefined : req.message;
    const httpMethod = req.contextValues.get(httpMethodKey) || req.requestMethod;
    try {
      let principal: Principal;
      try {
        principal = await verify(rule, req.method, req.header, message, httpMethod, req.url, req.contextValues);
      } catch (e) {
        // An optional credential may be left out, or be a token that is not valid (the method
        // answers as without one); one given malformed (`Bearer` with no or several tokens) is
        // refused as it is where the credential is required, not ignored.
        if (!(rule.optional && e instanceof AuthError && e.code === "unauthenticated" && e.reason !== "MALFORMED_CREDENTIAL")) throw e;
        principal = { kind: "anonymous" };
      }
      req.contextValues.set(principalKey, principal);
      if (rule.credential === Credential.NONE && rule.tokenField) {
        req.contextValues.set(presentedTokenKey, argumentToken(rule, req.method, req.header, message));
      }
      return await next(req);
    } catch (e) {
      if (e instanceof AuthError && e.code === "unauthenticated") {
        // A malformed Authorization header presents no token, but is no request without one.
        const presented =
          presentsBearerToken(req.header) || tokenField(rule, req.method, message) !== undefined ? "token" : usesBearerScheme(req.header) ? "malformed" : "none";
        const value = challenge(schemeOf(rule.credential), presented, e.reason);
        if (value !== undefined) req.contextValues.set(challengeKey, value);
      }
      throw e;
    }
  };
}
