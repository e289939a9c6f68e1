// Where and how each Tessera service is served over REST, read from its proto options. The
// server compiles its routes with these; the API description (gen/openapi.json) is generated
// from the same routes.
import { getOption, hasOption, type DescMethod, type DescService } from "@bufbuild/protobuf";
import { http_response, http_service } from "../gen/tessera/options/v1/options_pb.js";
import { ApiTokenService } from "../gen/tessera/apitoken/v1/api_token_pb.js";
import { AuditService } from "../gen/tessera/audit/v1/audit_pb.js";
import { AuthenticationTokenService } from "../gen/tessera/authtoken/v1/authentication_token_pb.js";
import { JwtService } from "../gen/tessera/jwt/v1/jwt_pb.js";
import { KeyService } from "../gen/tessera/key/v1/key_pb.js";
import { SessionService, UserService } from "../gen/tessera/session/v1/session_pb.js";
import { UserTokenService } from "../gen/tessera/usertoken/v1/user_token_pb.js";
import { compileServiceRoutes, type Route, type SuccessStatus } from "./transcode/binding.js";
import type { PathTemplate, TemplateSegment } from "./transcode/path-template.js";

/**
 * Where a service's REST routes are mounted: its `tessera.options.v1.http_service` option, except
 * that a deployment may mount the JWT API elsewhere (TESSERA_JWT_BASE_PATH, given as
 * `jwtBasePath`; unset: the proto's own base path).
 */
export function restMount(
  service: DescService,
  jwtBasePath?: string,
): { basePath: string; looseArguments: boolean; timestampMillis: boolean } {
  const rule = hasOption(service, http_service) ? getOption(service, http_service) : undefined;
  const declared = rule?.basePath || "/";
  const basePath = service.typeName === JwtService.typeName && jwtBasePath !== undefined ? jwtBasePath : declared;
  return { basePath, looseArguments: rule?.looseArguments ?? false, timestampMillis: rule?.timestampMillis ?? false };
}

/** A method's declared REST success answer (`tessera.options.v1.http_response`), if any. */
export function successStatus(method: DescMethod): SuccessStatus | undefined {
  if (!hasOption(method, http_response)) return undefined;
  const rule = getOption(method, http_response);
  return { status: rule.status, unsetBodyStatus: rule.unsetBodyStatus, contentType: rule.contentType };
}

/**
 * Every REST route of a service, compiled as the server compiles them (the server's transcoder
 * serves these). Compiled once per service and base path: a start checks them against each other
 * (the configuration's jwtRouteClash) and then serves them, and compiling them twice cost the
 * start a few milliseconds. Routes are read-only, so the two share them.
 */
export function restRoutes(service: DescService, jwtBasePath?: string): readonly Route[] {
  const mount = restMount(service, jwtBasePath);
  let byBasePath = compiledRoutes.get(service);
  if (byBasePath === undefined) compiledRoutes.set(service, (byBasePath = new Map()));
  let routes = byBasePath.get(mount.basePath);
  if (routes === undefined) byBasePath.set(mount.basePath, (routes = compileServiceRoutes(service, { ...mount, successStatus })));
  return routes;
}
const compiledRoutes = new WeakMap<DescService, Map<string, readonly Route[]>>();

/**
 * The services Tessera serves, as services/index.ts binds them: the Session API's two
 * (SessionService, UserService) only with TESSERA_SESSION_API on.
 */
export function servedServices(sessionApi: boolean): DescService[] {
  return [
    ...(sessionApi ? [SessionService, UserService] : []),
    ApiTokenService,
    UserTokenService,
    AuthenticationTokenService,
    JwtService,
    KeyService,
    AuditService,
  ];
}

/**
 * The first JWT API route that, mounted at `jwtBasePath`, takes a request another served API's
 * route takes too (same HTTP method, a path both templates match): the route table would answer
 * it with one of them (a literal segment before a variable), so the other's callers would reach
 * the wrong method ("/v1/frontend/auth/user" was no longer the admin's account "user").
 */
export function jwtRouteClash(jwtBasePath: string, sessionApi: boolean): { jwt: Route; other: Route } | undefined {
  const others = servedServices(sessionApi)
    .filter((service) => service.typeName !== JwtService.typeName)
    .flatMap((service) => restRoutes(service));
  for (const jwt of restRoutes(JwtService, jwtBasePath)) {
    const other = others.find((route) => route.httpMethod === jwt.httpMethod && templatesMeet(jwt.template, route.template));
    if (other) return { jwt, other };
  }
  return undefined;
}

/** True when some request path matches both templates (a verb read as part of the last segment). */
function templatesMeet(a: PathTemplate, b: PathTemplate): boolean {
  return segmentsMeet(withVerb(a), withVerb(b));
}

function withVerb(t: PathTemplate): readonly TemplateSegment[] {
  const last = t.segments.at(-1);
  if (t.verb === undefined || last?.kind !== "literal") return t.segments;
  return [...t.segments.slice(0, -1), { kind: "literal", value: `${last.value}:${t.verb}` }];
}

function segmentsMeet(a: readonly TemplateSegment[], b: readonly TemplateSegment[]): boolean {
  for (let i = 0; ; i++) {
    const x = a[i];
    const y = b[i];
    // `**` is last and takes zero or more segments: whatever the other has left.
    if (x?.kind === "deep" || y?.kind === "deep") return true;
    if (x === undefined || y === undefined) return x === y;
    if (x.kind === "literal" && y.kind === "literal" && x.value !== y.value) return false;
  }
}
