// KeyService: the public JWKS for offline verification, and admin key rotation.
import type { JsonObject } from "@bufbuild/protobuf";
import { KeyService } from "../../gen/tessera/key/v1/key_pb.js";
import type { KeyRing } from "../core/key-ring.js";
import { bind, type ServiceBinding } from "./binding.js";

export function keyService(keyRing: Pick<KeyRing, "jwks" | "rotate">): ServiceBinding {
  return bind(KeyService, {
    async getJwks(_req, ctx) {
      // Verifiers may cache for 5 minutes: a rotated-in key signs only after other instances
      // reload (30 s), and a retired key stays listed long after that.
      ctx.responseHeader.set("cache-control", "public, max-age=300");
      return { keys: (await keyRing.jwks()) as JsonObject[] };
    },

    async rotateKey() {
      return { kid: await keyRing.rotate() };
    },
  });
}
