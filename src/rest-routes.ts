// Where and how each Tessera service is served over REST, read from its proto options. The
// server compiles its routes with these; the API description (gen/openapi.json) is generated
// from the same routes.
import { getOption, hasOption, type DescMethod, type DescService } from "@bufbuild/protobuf";
import { http_response, http_service } from "../gen/tessera/options/v1/options_pb.js";
import { JwtService } from "../gen/tessera/jwt/v1/jwt_pb.js";
import { compileServiceRoutes, type Route, type SuccessStatus } from "./transcode/binding.js";

/**
 * Where a service's REST routes are mounted: its `tessera.options.v1.http_service` option, except
 * that a deployment may mount the JWT API elsewhere (TESSERA_JWT_BASE_PATH, given as
 * `jwtBasePath`; unset: the proto's own base path).
 */
export function restMount(service: DescService, jwtBasePath?: string): { basePath: string; looseArguments: boolean } {
  const rule = hasOption(service, http_service) ? getOption(service, http_service) : undefined;
  const declared = rule?.basePath || "/";
  const basePath = service.typeName === JwtService.typeName && jwtBasePath !== undefined ? jwtBasePath : declared;
  return { basePath, looseArguments: rule?.looseArguments ?? false };
}

/** A method's declared REST success answer (`tessera.options.v1.http_response`), if any. */
export function successStatus(method: DescMethod): SuccessStatus | undefined {
  if (!hasOption(method, http_response)) return undefined;
  const rule = getOption(method, http_response);
  return { status: rule.status, unsetBodyStatus: rule.unsetBodyStatus, contentType: rule.contentType };
}

/** Every REST route of a service, compiled as the server compiles them. */
export function restRoutes(service: DescService, jwtBasePath?: string): Route[] {
  return compileServiceRoutes(service, { ...restMount(service, jwtBasePath), successStatus });
}
