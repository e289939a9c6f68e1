// API tokens per gateway account (seed 001). Authenticate is the platform's hot path: every
// public API request asks which account a token belongs to. So:
// - a token's shape and checksum are checked first, with no I/O (api-token-secret.ts);
// - the store keeps only SHA-256(secret) and is queried by that hash: finding a row by an exact
//   hash is the constant-time comparison (nothing secret-dependent is compared byte by byte);
// - a small per-instance cache (hash -> record, TTL TESSERA_API_TOKEN_CACHE_SECONDS) absorbs
//   repeated lookups; revocation here evicts at once (also one the store answered with an
//   error: it may have been made all the same), other instances see it within the TTL;
// - `last_used` is written at most once per token per TESSERA_LAST_USED_INTERVAL_SECONDS, fire
//   and forget, guarded in process so a hot token does not even issue the write.
import type { Config } from "../config.js";
import type { Logger } from "../logger.js";
import type { ApiTokenRecord, ApiTokenState, ApiTokenStore } from "../store/ports/api-tokens.js";
import { settledOf } from "../store/ports/errors.js";
import { generateApiTokenSecret, isWellFormedApiToken } from "./api-token-secret.js";
import type { Clock } from "./clock.js";
import { failedPrecondition, invalidArgument, invalidField, notFound, unauthenticated } from "./errors.js";
import { Lru } from "./lru.js";
import { checkFreeText, holdsControlCharacters, lineText } from "./text.js";
import { hashSecret, randomId, secretEquals } from "./secrets.js";

/** Longest accepted field values; longer is 400 naming the field. */
export const API_TOKEN_LIMITS = { account_id: 255, description: 1024, created_by: 255 } as const;

/** How many lookups an instance caches (LRU beyond that); a few hundred bytes each, so a few MB. */
export const DEFAULT_API_TOKEN_CACHE_ENTRIES = 10_000;

export interface ApiTokenIdentity {
  readonly accountId: string;
  readonly tokenLink: string;
}

/** What an instance remembers about a looked-up token (never the secret). */
interface CachedToken {
  readonly link: string;
  readonly hash: string;
  readonly accountId: string;
  readonly revoked: boolean;
  /** Last use known to this instance (from the store, or our own write), ms since epoch. */
  lastUsedMs: number | undefined;
}

export interface ApiTokensDeps {
  apiTokens: ApiTokenStore;
  clock: Clock;
  logger: Logger;
  config: Pick<Config, "lastUsedIntervalSeconds" | "apiTokenCacheSeconds" | "maxApiTokensPerAccount">;
  /** Cache bound (entries); default DEFAULT_API_TOKEN_CACHE_ENTRIES. */
  cacheEntries?: number;
}

// Malformed, unknown and revoked tokens get one answer, reason included.
const invalidToken = () => unauthenticated("INVALID_TOKEN", "invalid API token");
const notUpdated = () => notFound("TOKEN_NOT_FOUND", "Could not update token description");
const notRevoked = () => notFound("TOKEN_NOT_FOUND", "Could not revoke token");
// A full account is refused, never made room in: each of its tokens is a deployed integration.
const tooManyTokens = (max: number) =>
  failedPrecondition("TOO_MANY_TOKENS", `an account holds at most ${max} active API tokens; revoke one first`);

/** The shape of every token link (a UUID, either case): text of another shape names no token. */
export const TOKEN_LINK = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Seed 001's validation message: every missing (empty or blank) field, in the order given
 * (the request message's declaration order): `Missing fields: [account_id, description]`.
 */
function requireFields(fields: ReadonlyArray<readonly [name: string, value: string | undefined]>): void {
  const missing = fields.filter(([, v]) => v === undefined || v.trim() === "").map(([name]) => name);
  if (missing.length > 0) {
    throw invalidArgument("MISSING_FIELDS", `Missing fields: [${missing.join(", ")}]`, {
      fieldViolations: missing.map((field) => ({ field, description: `${field} is required` })),
    });
  }
}

function limitLength(name: keyof typeof API_TOKEN_LIMITS, value: string | undefined): void {
  checkFreeText(name, value, API_TOKEN_LIMITS[name]);
}

/**
 * An account id as its log lines write it (lineText): a caller's free text, which may hold what
 * would split a line or turn it around for its reader (U+2028, NEL, U+202E).
 */
const loggedAccountId = (accountId: string) => lineText(accountId, API_TOKEN_LIMITS.account_id);

/**
 * An account id that GET and DELETE /v1/frontend/auth/{account_id} can name: not "." or "..",
 * which URL parsers (WHATWG URL, curl, Go's net/url) remove from a path, percent-encoded too
 * ("%2E", "%2e%2E"), so the request would reach another path. Any other id is one segment once
 * percent-encoded (the path variable decodes "%2F" too). Only creation refuses them: tokens
 * stored for them before are listed and revoked over gRPC and Connect, the id in the body.
 */
function checkAccountIdInPath(accountId: string): void {
  if (accountId === "." || accountId === "..") {
    throw invalidField("account_id", 'account_id must not be "." or "..": URLs drop such path segments, so its tokens could not be listed or revoked over REST');
  }
}

/** "active" (also for empty) or "revoked", case-insensitive; anything else 400. */
export function parseApiTokenState(raw: string | undefined): ApiTokenState {
  const v = (raw ?? "").trim().toLowerCase();
  if (v === "" || v === "active") return "active";
  if (v === "revoked") return "revoked";
  throw invalidField("state", 'state must be "active" or "revoked"');
}

export class ApiTokens {
  private readonly tokens: ApiTokenStore;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly intervalMs: number;
  private readonly maxPerAccount: number;
  private readonly cache: Lru<string, CachedToken>;
  /** Links this instance wrote (or asked to write) last_used for, within the interval. */
  private readonly touched: Lru<string, true>;
  /**
   * One store lookup per hash at a time: a burst of calls with a cold token shares it, while it
   * began less than the cache TTL ago (`readAt`), as a cached entry would be.
   */
  private readonly inflight = new Map<string, { request: Promise<CachedToken | null>; readAt: number }>();
  private readonly ttlMs: number;
  /** last_used writes in flight (awaited by drain()). */
  private readonly writes = new Set<Promise<void>>();
  /** Bumped by every revocation here, so a lookup that raced it does not refill the cache. */
  private epoch = 0;
  /** Links of tokens whose revocation failed while its write went on (revokedInDoubt), with how many such writes go on. */
  private readonly doubted = new Map<string, number>();
  private revoked: ((hash: string) => unknown) | undefined;

  constructor(deps: ApiTokensDeps) {
    this.tokens = deps.apiTokens;
    this.clock = deps.clock;
    this.logger = deps.logger;
    this.intervalMs = deps.config.lastUsedIntervalSeconds * 1000;
    this.maxPerAccount = deps.config.maxApiTokensPerAccount;
    const entries = deps.cacheEntries ?? DEFAULT_API_TOKEN_CACHE_ENTRIES;
    this.ttlMs = deps.config.apiTokenCacheSeconds * 1000;
    // Entries live at most the cache TTL, which bounds how long another instance's revocation
    // can go unseen here; the instance that revokes evicts at once.
    this.cache = new Lru({ maxEntries: entries, ttlMs: this.ttlMs });
    this.touched = new Lru({ maxEntries: entries, ttlMs: this.intervalMs > 0 ? this.intervalMs + 1 : 0 });
  }

  /**
   * Creates a token; returns its secret (shown once) and the stored record. An account holding
   * TESSERA_MAX_API_TOKENS_PER_ACCOUNT active tokens is refused (FAILED_PRECONDITION,
   * TOO_MANY_TOKENS) until one is revoked.
   */
  async create(input: { accountId: string; description: string; createdBy?: string }): Promise<{ secret: string; token: ApiTokenRecord }> {
    requireFields([
      ["account_id", input.accountId],
      ["description", input.description],
    ]);
    limitLength("account_id", input.accountId);
    checkAccountIdInPath(input.accountId);
    limitLength("description", input.description);
    limitLength("created_by", input.createdBy);
    const secret = generateApiTokenSecret();
    const createdBy = input.createdBy?.trim() ? input.createdBy : undefined;
    const token = await this.tokens.create({
      link: randomId(),
      hash: hashSecret(secret),
      accountId: input.accountId,
      description: input.description,
      ...(createdBy !== undefined && { createdBy }),
      issuedAt: this.clock.now(),
    }, this.maxPerAccount);
    if (token === null) throw tooManyTokens(this.maxPerAccount);
    this.logger.info("api token created", { accountId: loggedAccountId(token.accountId), tokenLink: token.link });
    return { secret, token };
  }

  /** New description of an active token; 404 "Could not update token description" otherwise. */
  async updateDescription(tokenLink: string, description: string): Promise<ApiTokenRecord> {
    requireFields([
      ["token_link", tokenLink],
      ["description", description],
    ]);
    limitLength("description", description);
    // A link that is not a UUID cannot exist: same answer as unknown, without a store call.
    if (!TOKEN_LINK.test(tokenLink)) throw notUpdated();
    const token = await this.tokens.updateDescription(tokenLink.toLowerCase(), description);
    if (!token) throw notUpdated();
    return token;
  }

  /** The account's tokens in `state` ("active" default, "revoked"), newest first. */
  async list(accountId: string, state: string | undefined): Promise<ApiTokenRecord[]> {
    requireFields([["account_id", accountId]]);
    const parsed = parseApiTokenState(state);
    // An account id with a control character cannot exist (create refuses it): nothing to list,
    // and no store is asked to compare a value it may not even hold.
    if (holdsControlCharacters(accountId)) return [];
    return this.tokens.list(accountId, parsed);
  }

  /**
   * Revokes one of the account's active tokens; 404 "Could not revoke token" when the link is
   * unknown, already revoked or another account's. Evicts this instance's cache at once, also
   * when the store answers with an error (revokedInDoubt).
   */
  async revoke(accountId: string, tokenLink: string): Promise<ApiTokenRecord> {
    requireFields([
      ["account_id", accountId],
      ["token_link", tokenLink],
    ]);
    if (!TOKEN_LINK.test(tokenLink) || holdsControlCharacters(accountId)) throw notRevoked();
    const link = tokenLink.toLowerCase();
    let token: ApiTokenRecord | null;
    try {
      token = await this.tokens.revoke(accountId, link, this.clock.now());
    } catch (e) {
      await this.revokedInDoubt(link, e);
      throw e;
    }
    if (!token) throw notRevoked();
    this.forget(token.hash);
    await this.revoked?.(token.hash);
    this.logger.info("api token revoked", { accountId: loggedAccountId(token.accountId), tokenLink: token.link });
    return token;
  }

  /**
   * A revocation the store answered with an error may have been made all the same (a write that
   * landed, its answer lost; on MongoDB one still under way when the store's time bound passed):
   * the token is let go of here and in the other workers as if it had been, by its link (its
   * hash is not known without the store's answer). Eviction costs a lookup at most. A write that
   * goes on after the error (settledOf) may land after a lookup here has read the token still
   * active: until it has ended the token's lookups are not cached, and once it has, the token is
   * let go of again, here and in the other workers.
   */
  private async revokedInDoubt(link: string, error: unknown): Promise<void> {
    const settled = settledOf(error);
    if (settled) {
      this.doubted.set(link, (this.doubted.get(link) ?? 0) + 1);
      void settled.then(() => {
        const left = this.doubted.get(link)! - 1;
        if (left === 0) this.doubted.delete(link);
        else this.doubted.set(link, left);
        return this.letGo(link);
      });
    }
    await this.letGo(link);
  }

  /** A revocation in doubt: the token forgotten here and in the other workers; a failure to is logged (the store's error answers). */
  private async letGo(link: string): Promise<void> {
    try {
      this.forget(link);
      await this.revoked?.(link);
    } catch (e) {
      this.logger.warn("api token revocation in doubt not applied everywhere", { tokenLink: link, error: e instanceof Error ? e.message : String(e) });
    }
  }

  /**
   * `told` hears the hash of every token revoked here, or its link when the store answered the
   * revocation with an error (revokedInDoubt), to tell other workers: forget; the revocation
   * ends once what it returns has settled.
   */
  onRevoke(told: (hashOrLink: string) => unknown): void {
    this.revoked = told;
  }

  /**
   * A token revoked elsewhere, named by its hash, or by its link (a revocation in doubt): this
   * instance's cache lets go of it at once, and a lookup under way does not fill it.
   */
  forget(hashOrLink: string): void {
    this.epoch++;
    if (TOKEN_LINK.test(hashOrLink)) {
      const link = hashOrLink.toLowerCase();
      this.cache.deleteWhere((token) => token.link === link);
      // Lookups under way are keyed by hash: none of them is shared from now on.
      this.inflight.clear();
      return;
    }
    this.cache.delete(hashOrLink);
    this.inflight.delete(hashOrLink);
  }

  /**
   * The account of an active token; AuthError unauthenticated ("invalid API token", the same for
   * malformed, unknown and revoked) otherwise. A token failing the shape or checksum test never
   * reaches the cache or the store.
   */
  async authenticate(secret: string): Promise<ApiTokenIdentity> {
    if (!isWellFormedApiToken(secret)) throw invalidToken();
    const hash = hashSecret(secret);
    const nowMs = this.clock.now().getTime();
    const token = this.cache.get(hash, nowMs) ?? (await this.lookup(hash, nowMs));
    if (token === null || token.revoked) throw invalidToken();
    this.recordUse(token);
    return { accountId: token.accountId, tokenLink: token.link };
  }

  /** Lookups of the token cache that hit and missed, since start (metrics). */
  cacheCounts(): { hits: number; misses: number } {
    return { hits: this.cache.hits, misses: this.cache.misses };
  }

  /** Resolves when every last_used write started so far has settled (shutdown, tests). */
  async drain(): Promise<void> {
    while (this.writes.size > 0) await Promise.all(this.writes);
  }

  /**
   * The token's record, read from the store at `readAt` (now), or by a read under way that began
   * less than the cache TTL before it. An older read (or one that began after it: the clock has
   * been stepped back since, so its age cannot be told) is not shared: begun before a revocation
   * elsewhere, a slow store's answer to it would keep the token live past the TTL for every call
   * that joined it.
   */
  private lookup(hash: string, readAt: number): Promise<CachedToken | null> {
    const pending = this.inflight.get(hash);
    if (pending && readAt - pending.readAt < this.ttlMs && readAt >= pending.readAt) return pending.request;
    const epoch = this.epoch;
    // The entry's TTL counts from the read, not from its answer: a read that began before a
    // revocation elsewhere and answered late must not keep the token live a whole TTL longer.
    const request = this.tokens
      .findByHash(hash)
      .then((record) => {
        // The store matched on the hash already; re-check in constant time so a store that
        // matched loosely (collation, a bad index) can never authenticate the wrong token.
        if (record === null || !secretEquals(record.hash, hash)) return null;
        const token: CachedToken = {
          link: record.link,
          hash: record.hash,
          accountId: record.accountId,
          revoked: record.revokedAt !== undefined,
          lastUsedMs: record.lastUsedAt?.getTime(),
        };
        // Revoked tokens are cached too: a client still hammering with one costs no lookups. An
        // active one whose revocation is in doubt is not (revokedInDoubt).
        if (epoch === this.epoch && (token.revoked || !this.doubted.has(token.link))) this.cache.set(hash, token, readAt);
        return token;
      })
      .finally(() => {
        if (this.inflight.get(hash)?.request === request) this.inflight.delete(hash);
      });
    this.inflight.set(hash, { request, readAt });
    return request;
  }

  /** Coalesced last_used: at most one write per token per interval, never awaited. */
  private recordUse(token: CachedToken): void {
    const now = this.clock.now();
    const nowMs = now.getTime();
    // `<=` matches the store's condition (writes only when the stored value is older than the interval).
    if (token.lastUsedMs !== undefined && nowMs - token.lastUsedMs <= this.intervalMs) return;
    if (this.touched.get(token.link, nowMs)) return;
    token.lastUsedMs = nowMs;
    this.touched.set(token.link, true, nowMs);
    // The store's conditional update keeps instances from writing more than once per interval
    // between them; a failed write only delays last_used, so it is logged, never thrown.
    // (Started from a resolved promise so even a synchronous throw becomes a logged rejection.)
    const write: Promise<void> = Promise.resolve()
      .then(() => this.tokens.touchLastUsed(token.link, now, this.intervalMs))
      .then(
        () => undefined,
        (e: unknown) =>
          this.logger.warn("api token last_used write failed", { tokenLink: token.link, error: e instanceof Error ? e.message : String(e) }),
      )
      .finally(() => this.writes.delete(write));
    this.writes.add(write);
  }
}
