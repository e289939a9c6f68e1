// The composition of Tessera's services: the core, each proto service with its implementation,
// and the credential verifiers the access interceptor uses.
import type { CredentialVerifiers } from "../access/interceptor.js";
import type { Clock } from "../core/clock.js";
import type { Config } from "../config.js";
import type { Logger } from "../logger.js";
import type { ServiceBinding } from "../server/index.js";
import type { Store } from "../store/ports.js";
import { apiTokenBinding, apiTokenVerifier } from "./api-token.js";
import { authenticationTokenBinding, sessionCookieVerifier } from "./authentication-token.js";
import { userTokenBinding, userTokenVerifier } from "./user-token.js";
import { createCore } from "../core/index.js";
import { jwtBinding, jwtVerifier } from "./jwt.js";
import { keyBinding } from "./key.js";
import { sessionBinding, sessionVerifier } from "./session.js";
import { userBinding } from "./user.js";

export interface ServiceDeps {
  config: Config;
  store: Store;
  logger: Logger;
  clock: Clock;
}

export interface Services {
  bindings: ServiceBinding[];
  verifiers: CredentialVerifiers;
  /** Stops background work (caches, timers). */
  close(): Promise<void>;
}

export async function createServices(deps: ServiceDeps): Promise<Services> {
  const core = await createCore(deps);
  const verifiers: CredentialVerifiers = {
    session: sessionVerifier(core.sessions),
    apiToken: apiTokenVerifier(core.apiTokens),
    userToken: userTokenVerifier(core.userTokens),
    jwt: jwtVerifier(core.jwt),
    sessionCookie: sessionCookieVerifier(core.userTokens),
  };
  const bindings: ServiceBinding[] = [
    // Without the Session API, its /user is free for the JWT API mounted at "/".
    ...(deps.config.sessionApi ? [sessionBinding(core.sessions), userBinding(core.users)] : []),
    apiTokenBinding(core.apiTokens),
    userTokenBinding(core.userTokens),
    authenticationTokenBinding(core.authTokens, deps.config),
    jwtBinding({ jwt: core.jwt, keyRing: core.keyRing }),
    keyBinding(core.keyRing),
  ];
  // Let fire-and-forget last_used writes settle before the store closes.
  return {
    bindings,
    verifiers,
    async close() {
      await core.housekeeping.stop();
      await core.apiTokens.drain();
    },
  };
}
