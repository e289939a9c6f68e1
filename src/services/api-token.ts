// ApiTokenService (seed 001): messages in, core call, messages out. The admin credential of the
// /v1/frontend/* methods and the bearer API token of Authenticate are checked by the access
// interceptor before a handler runs (see the `access` options in api_token.proto).
import { ApiTokenService } from "../../gen/tessera/apitoken/v1/api_token_pb.js";
import { requirePrincipal } from "../access/context.js";
import { formatApiTokenDate } from "../core/api-token-date.js";
import type { ApiTokens } from "../core/api-tokens.js";
import { bind, type ServiceBinding } from "./binding.js";

export function apiTokenService(apiTokens: ApiTokens): ServiceBinding {
  return bind(ApiTokenService, {
    authenticate(_req, ctx) {
      const { accountId, tokenLink } = requirePrincipal(ctx, "api_token");
      return { accountId, tokenLink };
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
  });
}
