// The identity core: one instance per process, shared by every service. Each part is built
// here with only what it uses: the store ports of its domain, the other parts it calls, the
// clock and its slice of the configuration. Services in turn receive only the parts they use.
import { configuredSecret, type Config } from "../config.js";
import type { Logger } from "../logger.js";
import type { Store } from "../store/ports.js";
import type { ApiTokens } from "./api-tokens.js";
import { AuditTrail } from "./audit.js";
import { AuditedApiTokens, AuditedAuthenticationTokens, AuditedJwtTokens, AuditedSessions, AuditedUsers, AuditedUserTokens } from "./audited.js";
import type { AuthenticationTokens } from "./authentication-tokens.js";
import type { Clock } from "./clock.js";
import { CredentialLifecycle } from "./credential-lifecycle.js";
import { Housekeeping } from "./housekeeping.js";
import type { JwtTokens } from "./jwt-tokens.js";
import { KeyRing } from "./key-ring.js";
import { HashPool } from "./hash-pool.js";
import { LoginThrottle } from "./login-throttle.js";
import { OwedWrites } from "./owed-writes.js";
import { Passwords } from "./passwords.js";
import type { Sessions } from "./sessions.js";
import { TokenVerifier } from "./token-verifier.js";
import type { UserTokens } from "./user-tokens.js";
import type { Users } from "./users.js";

export interface Core {
  /** Every service's users: sign-up, password logins, password changes, deactivation. */
  users: Users;
  passwords: Passwords;
  /** The password hashers' admission control (its load is a metric). */
  hashPool: HashPool;
  /** Security events: `audit.record({type, outcome, userId, login, subject, reason})`. */
  audit: AuditTrail;
  /** Signing keys: storage, rotation, JWKS, PEM. */
  keyRing: KeyRing;
  /** Verification of the JWTs the key ring signed. */
  verifier: TokenVerifier;
  /** Seed 000 sessions. */
  sessions: Sessions;
  /** Seed 002 user tokens and seed 003 cookie sessions. */
  userTokens: UserTokens;
  /** Seed 003 short-lived authentication tokens. */
  authTokens: AuthenticationTokens;
  /** Seed 004 access and refresh JWTs. */
  jwt: JwtTokens;
  /** Seed 001 API tokens per gateway account. */
  apiTokens: ApiTokens;
  /** Periodic removal of expired records. */
  housekeeping: Housekeeping;
  /** The start's writes the store refused for a full disk, retried until made (close() stops them). */
  owedWrites: OwedWrites;
  /** Login protection: its releases the store failed are retried until made (close() stops them). */
  throttle: LoginThrottle;
}

export async function createCore(deps: { config: Config; store: Store; clock: Clock; logger: Logger; auditWindowMs?: number | undefined }): Promise<Core> {
  const { config, store, clock, logger } = deps;
  const hashPool = new HashPool({ concurrency: config.hashConcurrency, queueLimit: config.hashQueueLimit });
  const passwords = new Passwords(
    { memoryKib: config.argon2MemoryKib, iterations: config.argon2Iterations, parallelism: config.argon2Parallelism },
    hashPool,
  );
  const audit = new AuditTrail({
    events: store.auditEvents,
    clock,
    logger,
    enabled: config.audit,
    budget: { perAddress: config.auditRefusalsPerMinute, total: config.auditRefusalsPerMinuteTotal, windowMs: deps.auditWindowMs ?? 60_000 },
    isSecret: configuredSecret(config),
  });
  const throttle = new LoginThrottle({ loginAttempts: store.loginAttempts, config, clock });
  const lifecycle = new CredentialLifecycle({
    sessions: store.sessions,
    userTokens: store.userTokens,
    jwtRefreshTokens: store.jwtRefreshTokens,
  });
  const users = new AuditedUsers(audit, { users: store.users, lifecycle, passwords, throttle, clock, logger });
  // Refused for a full disk, the start goes on: accounts without a key are found by their exact
  // spelling meanwhile, as before the backfill.
  const owedWrites = new OwedWrites(logger);
  await owedWrites.run("the login keys of accounts stored without one", () => users.backfillLoginKeys());
  let keyRing: KeyRing;
  try {
    keyRing = await KeyRing.open({ keys: store.keys, config, clock, logger, audit, owed: owedWrites });
  } catch (error) {
    // The start fails and its store closes: a write owed so far is not tried again on it.
    await owedWrites.close();
    throw error;
  }
  const verifier = new TokenVerifier({ ring: keyRing, clock });
  const sessions = new AuditedSessions(audit, {
    sessions: store.sessions,
    refreshTokens: store.refreshTokens,
    users,
    ring: keyRing,
    verifier,
    clock,
    config,
    logger,
  });
  const sources = { sessions: store.sessions, userTokens: store.userTokens };
  const userTokens = new AuditedUserTokens(audit, { userTokens: store.userTokens, users, keys: keyRing, sources, clock, logger, config });
  const authTokens = new AuditedAuthenticationTokens(audit, {
    authTokens: store.authTokens,
    users,
    userTokens,
    keys: keyRing,
    clock,
    logger,
    config,
    sources,
  });
  const jwt = new AuditedJwtTokens(audit, {
    ring: keyRing,
    verifier,
    users,
    refreshTokens: store.jwtRefreshTokens,
    clock,
    logger,
    issuer: config.jwtIssuer,
    audience: config.jwtAudience,
    accessTokenTtlSeconds: config.accessTokenTtlSeconds,
    refreshTokenTtlSeconds: config.refreshTokenTtlSeconds,
    maxRefreshTokensPerUser: config.maxJwtRefreshTokensPerUser,
    lastLoginIntervalSeconds: config.lastUsedIntervalSeconds,
  });
  const apiTokens = new AuditedApiTokens(audit, { apiTokens: store.apiTokens, clock, logger, config });
  const housekeeping = new Housekeeping({
    store,
    clock,
    logger,
    loginWindowSeconds: config.loginWindowSeconds,
    auditRetentionDays: config.auditRetentionDays,
    userTokenRetentionDays: config.userTokenRetentionDays,
    apiTokenRetentionDays: config.apiTokenRetentionDays,
  });
  housekeeping.start(config.housekeepingIntervalSeconds);
  return { users, passwords, hashPool, audit, keyRing, verifier, sessions, userTokens, authTokens, jwt, apiTokens, housekeeping, owedWrites, throttle };
}
