// KeyService: the public JWKS for offline verification, the OpenID Connect discovery document
// that points to it, and admin key rotation and revocation.
import type { JsonObject } from "@bufbuild/protobuf";
import { KeyService } from "../../gen/tessera/key/v1/key_pb.js";
import { cacheable, secureKey } from "../access/context.js";
import { openIdConfiguration } from "../core/discovery.js";
import type { KeyRing } from "../core/key-ring.js";
import { bind, type ServiceBinding } from "./binding.js";

export interface DiscoveryConfig {
  /** The `iss` of every token (TESSERA_PUBLIC_URL when set, else TESSERA_JWT_ISSUER). */
  issuer: string;
  /** TESSERA_PUBLIC_URL: where clients reach Tessera; unset, the request's origin is used. */
  publicUrl: string | undefined;
}

export function keyService(
  keyRing: Pick<KeyRing, "jwks" | "rotate" | "revoke" | "alg" | "jwksMaxAgeSeconds">,
  discovery: DiscoveryConfig,
): ServiceBinding {
  return bind(KeyService, {
    async getJwks(_req, ctx) {
      // Verifiers may cache it for less than a key is published before it signs (the ring's
      // jwksMaxAgeSeconds), so they always know the signing key; a retired key stays listed
      // until its tokens have expired.
      const keys = (await keyRing.jwks()) as JsonObject[];
      cacheable(ctx, `public, max-age=${keyRing.jwksMaxAgeSeconds}`);
      return { keys };
    },

    getOpenIdConfiguration(_req, ctx) {
      // Without a public URL, the origin the caller used (its Host, :authority or absolute
      // target; no forwarding header), which only the caller's own cache may keep: a shared
      // cache whose key holds less than that Host (a proxy keying on its upstream's name while
      // passing the client's Host on) would serve one caller's `jwks_uri`, another's keys, to all.
      const baseUrl = discovery.publicUrl ?? `${ctx.values.get(secureKey) ? "https" : "http"}://${new URL(ctx.url).host}`;
      cacheable(ctx, `${discovery.publicUrl === undefined ? "private" : "public"}, max-age=300`);
      return openIdConfiguration({ issuer: discovery.issuer, baseUrl, alg: keyRing.alg });
    },

    // The ring records key.rotated and key.revoked as the store holds each change.
    async rotateKey() {
      return { kid: await keyRing.rotate() };
    },

    revokeKey: (req) => keyRing.revoke(req.kid),
  });
}
