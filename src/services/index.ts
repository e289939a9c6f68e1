// The composition of Tessera's services: the core, each proto service with its implementation,
// and the credential verifiers the access interceptor uses.
import type { CredentialVerifiers } from "../access/interceptor.js";
import type { Clock } from "../core/clock.js";
import { createCore, type Core } from "../core/index.js";
import type { Config } from "../config.js";
import type { Logger } from "../logger.js";
import type { Store } from "../store/ports.js";
import { servedServices } from "../rest-routes.js";
import { apiTokenService } from "./api-token.js";
import { auditService } from "./audit.js";
import { authenticationTokenService } from "./authentication-token.js";
import type { ServiceBinding } from "./binding.js";
import { jwtService } from "./jwt.js";
import { keyService } from "./key.js";
import { sessionService, userService } from "./session.js";
import { userTokenService } from "./user-token.js";
import { credentialVerifiers } from "./verifiers.js";

export type { ServiceBinding } from "./binding.js";

export interface ServiceDeps {
  config: Config;
  store: Store;
  logger: Logger;
  clock: Clock;
  /** The audit budget's window in ms (default a minute): tests shorten it. */
  auditWindowMs?: number | undefined;
}

export interface Services {
  /** The identity core the services are built on (its figures are metrics; its audit trail records events). */
  core: Core;
  bindings: ServiceBinding[];
  verifiers: CredentialVerifiers;
  /** Stops background work (caches, timers). */
  close(): Promise<void>;
}

export async function createServices(deps: ServiceDeps): Promise<Services> {
  const core = await createCore(deps);
  const bindings: ServiceBinding[] = [
    // Without the Session API, its /user is free for the JWT API mounted at "/".
    ...(deps.config.sessionApi ? [sessionService(core.sessions), userService(core.users)] : []),
    apiTokenService(core.apiTokens),
    userTokenService(core.userTokens),
    authenticationTokenService(core.authTokens),
    jwtService(core.jwt, core.keyRing),
    keyService(core.keyRing, { issuer: deps.config.jwtIssuer, publicUrl: deps.config.publicUrl }),
    auditService(deps.store.auditEvents),
  ];
  // The configuration checks TESSERA_JWT_BASE_PATH against the routes of servedServices: it
  // must name the services bound here, else that check would miss a route (any start fails).
  const served = servedServices(deps.config.sessionApi).map((service) => service.typeName);
  if (bindings.map((b) => b.service.typeName).join() !== served.join()) {
    throw new Error(`services/index.ts binds other services than rest-routes.ts servedServices lists (${served.join(", ")})`);
  }
  return {
    core,
    bindings,
    verifiers: credentialVerifiers(core),
    async close() {
      await core.housekeeping.stop();
      await core.owedWrites.close();
      await core.throttle.close();
      // Let fire-and-forget last_used writes settle before the store closes.
      await core.apiTokens.drain();
      await core.audit.drain();
    },
  };
}
