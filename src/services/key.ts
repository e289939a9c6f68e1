// KeyService: the public JWKS for offline verification, and admin key rotation.
import type { JsonObject } from "@bufbuild/protobuf";
import type { ServiceImpl } from "@connectrpc/connect";
import { KeyService } from "../../gen/tessera/key/v1/key_pb.js";
import type { KeyRing } from "../core/key-ring.js";
import type { ServiceBinding } from "../server/index.js";

export function createKeyService(keyRing: Pick<KeyRing, "jwks" | "rotate">): ServiceImpl<typeof KeyService> {
  return {
    async getJwks(_req, ctx) {
      // Verifiers may cache for 5 minutes: a rotated-in key signs only after other instances
      // reload (30 s), and a retired key stays listed long after that.
      ctx.responseHeader.set("cache-control", "public, max-age=300");
      return { keys: (await keyRing.jwks()) as JsonObject[] };
    },

    async rotateKey() {
      return { kid: await keyRing.rotate() };
    },
  };
}

export function keyBinding(keyRing: Pick<KeyRing, "jwks" | "rotate">): ServiceBinding {
  return { service: KeyService, impl: createKeyService(keyRing) as unknown as ServiceBinding["impl"] };
}
