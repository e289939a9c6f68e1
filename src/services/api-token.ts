// ApiTokenService (seed 001): messages in, core call, messages out. The admin credential of the
// /v1/frontend/* methods and the bearer API token of Authenticate are checked by the access
// interceptor before a handler runs (see the `access` options in api_token.proto).
import type { ServiceImpl } from "@connectrpc/connect";
import { ApiTokenService } from "../../gen/tessera/apitoken/v1/api_token_pb.js";
import { principalKey } from "../access/context.js";
import type { ApiTokenPrincipal } from "../access/principal.js";
import { formatApiTokenDate } from "../core/api-token-date.js";
import type { ApiTokens } from "../core/api-tokens.js";
import { unauthenticated } from "../core/errors.js";
import type { ServiceBinding } from "../server/index.js";

export function createApiTokenService(apiTokens: ApiTokens): ServiceImpl<typeof ApiTokenService> {
  return {
    authenticate(_req, ctx) {
      const principal = ctx.values.get(principalKey);
      if (principal.kind !== "api_token") throw unauthenticated("MISSING_CREDENTIAL", "invalid API token");
      return { accountId: principal.accountId, tokenLink: principal.tokenLink };
    },

    async createToken(req) {
      const { secret } = await apiTokens.create({
        accountId: req.accountId,
        description: req.description,
        ...(req.createdBy !== undefined && { createdBy: req.createdBy }),
      });
      return { token: secret };
    },

    async updateToken(req) {
      const token = await apiTokens.updateDescription(req.tokenLink, req.description);
      return { tokenLink: token.link, description: token.description };
    },

    async listTokens(req) {
      const tokens = await apiTokens.list(req.accountId, req.state);
      return {
        tokens: tokens.map((t) => ({
          tokenLink: t.link,
          description: t.description,
          issuedDate: formatApiTokenDate(t.issuedAt),
          ...(t.lastUsedAt !== undefined && { lastUsed: formatApiTokenDate(t.lastUsedAt) }),
          ...(t.createdBy !== undefined && { createdBy: t.createdBy }),
          ...(t.revokedAt !== undefined && { revoked: formatApiTokenDate(t.revokedAt) }),
        })),
      };
    },

    async revokeToken(req) {
      const token = await apiTokens.revoke(req.accountId, req.tokenLink);
      return { revoked: formatApiTokenDate(token.revokedAt!) };
    },
  };
}

/** The `apiToken` credential verifier of the access interceptor. */
export function apiTokenVerifier(apiTokens: ApiTokens): (token: string) => Promise<ApiTokenPrincipal> {
  return async (token) => {
    const { accountId, tokenLink } = await apiTokens.authenticate(token);
    return { kind: "api_token", accountId, tokenLink };
  };
}

/** The service with its implementation, for the server's bindings. */
export function apiTokenBinding(apiTokens: ApiTokens): ServiceBinding {
  // ServiceBinding erases the service type; the implementation above is checked against it.
  return { service: ApiTokenService, impl: createApiTokenService(apiTokens) as unknown as ServiceBinding["impl"] };
}
