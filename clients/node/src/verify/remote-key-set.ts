// The key set at a URL, kept as long as its response says (Cache-Control max-age, less Age),
// within [cooldown, maxCacheSeconds]; without a max-age, for defaultCacheSeconds.
//
// Fetches happen only when a verification needs them — no timers: when the set is stale, and
// when a token names a kid the set does not hold (a key rotated in since the last fetch). Both
// are rate-limited by the cooldown: at most one fetch attempt per cooldown, whatever tokens
// arrive, and concurrent verifications share one fetch. A key that leaves the set stops
// verifying as soon as a fetch sees it gone. When the set is stale and cannot be fetched,
// nothing verifies (KEYS_UNAVAILABLE): a removed (revoked) key must not outlive the max-age
// because Tessera was unreachable.
//
// A set fetched with an ETag is asked for again conditionally (If-None-Match, RFC 9110 13.1.2):
// 304 Not Modified means the keys held are the current ones, fresh again for as long as the 304
// says (its Cache-Control, else the one the keys came with: RFC 9111 4.3.4), nothing re-read. A
// 304 naming another ETag than the keys held is not about them: the set is asked for again.
import { freshnessSeconds } from "./cache-control.js";
import { printable, redactedUrl, refuse, TokenVerificationError } from "./errors.js";
import { keysOf, type Algorithm, type KeySet, type VerificationKey } from "./jwk.js";

export interface RemoteKeySetOptions {
  /** Where the set is: a fixed URL, or one found through the discovery document. */
  url: () => Promise<URL>;
  algorithms: ReadonlySet<Algorithm>;
  fetch: typeof globalThis.fetch;
  now: () => number;
  timeoutMs: number;
  cooldownMs: number;
  defaultCacheMs: number;
  maxCacheMs: number;
}

/** How many kids that left the set are remembered, to say KEY_REMOVED rather than UNKNOWN_KEY. */
const rememberedRemovedKids = 256;

/** What revalidates the keys held: their URL, the ETag and the Cache-Control they came with. */
interface Validator {
  url: string;
  etag: string;
  cacheControl: string | null;
}

export class RemoteKeySet {
  private keys: KeySet | undefined;
  private expiresAt = -Infinity;
  private lastAttempt = -Infinity;
  private lastFailure: TokenVerificationError | undefined;
  private fetching: Promise<void> | undefined;
  private readonly removed = new Set<string>();
  private validator: Validator | undefined;

  constructor(private readonly o: RemoteKeySetOptions) {}

  /** The key for `kid` when the set is fresh and holds it (no I/O). */
  freshKey(kid: string): VerificationKey | undefined {
    const now = this.o.now();
    return now < this.expiresAt && now >= this.lastAttempt ? this.keys?.get(kid) : undefined;
  }

  /** The key for `kid`, fetching the set first when it is stale or lacks the kid (rate-limited). */
  async key(kid: string): Promise<VerificationKey> {
    const now = this.o.now();
    // A clock that went back makes the set stale, and lets a fetch happen.
    const fresh = this.keys !== undefined && now < this.expiresAt && now >= this.lastAttempt;
    if (!fresh || this.keys!.get(kid) === undefined) {
      if (this.fetching || this.mayFetch(now)) {
        await this.refresh();
      } else if (!fresh) {
        throw this.lastFailure ?? refuse("KEYS_UNAVAILABLE", "the key set could not be fetched");
      }
    }
    const key = this.keys?.get(kid);
    if (key) return key;
    if (this.removed.has(kid)) throw refuse("KEY_REMOVED", "the token's key has been removed from the key set (retired or revoked)");
    throw refuse("UNKNOWN_KEY", "the token's key is not in the key set");
  }

  private mayFetch(now: number): boolean {
    return now - this.lastAttempt >= this.o.cooldownMs || now < this.lastAttempt;
  }

  /** Fetches the set; concurrent callers share one fetch. Throws KEYS_UNAVAILABLE when it fails. */
  private refresh(): Promise<void> {
    this.fetching ??= this.fetchKeys().finally(() => {
      this.fetching = undefined;
    });
    return this.fetching;
  }

  private async fetchKeys(): Promise<void> {
    const started = this.o.now();
    this.lastAttempt = started;
    try {
      const url = await this.o.url();
      const accept = "application/jwk-set+json, application/json";
      const held = this.keys !== undefined && this.validator?.url === url.href ? this.validator : undefined;
      let answer = await fetchJson(this.o.fetch, url, this.o.timeoutMs, accept, held?.etag);
      const confirmed = answer.headers.get("etag");
      if (answer.notModified && confirmed !== null && opaqueTag(confirmed) !== opaqueTag(held!.etag)) {
        // RFC 9111 4.3.4: a 304 naming another ETag says nothing of the keys held (a cache in
        // between, a broken server): asked for again, unconditionally.
        answer = await fetchJson(this.o.fetch, url, this.o.timeoutMs, accept);
      }
      let headers = answer.headers;
      if (answer.notModified) {
        // The keys held are current. A 304 without Cache-Control keeps the one they came with.
        const cacheControl = headers.get("cache-control") ?? held!.cacheControl;
        headers = new Headers(headers);
        if (cacheControl !== null) headers.set("cache-control", cacheControl);
        this.validator = { url: url.href, etag: headers.get("etag") ?? held!.etag, cacheControl };
      } else {
        const keys = keysOf(answer.body, this.o.algorithms);
        if (!keys) throw refuse("KEYS_UNAVAILABLE", `the key set at ${redactedUrl(url)} has no "keys" array`);
        this.replace(keys);
        const etag = headers.get("etag");
        this.validator = etag === null ? undefined : { url: url.href, etag, cacheControl: headers.get("cache-control") };
      }
      const seconds = freshnessSeconds(headers);
      const lifetime = seconds === undefined ? this.o.defaultCacheMs : Math.min(seconds * 1000, this.o.maxCacheMs);
      this.expiresAt = started + Math.max(lifetime, this.o.cooldownMs);
      this.lastFailure = undefined;
    } catch (e) {
      this.lastFailure = e instanceof TokenVerificationError ? e : refuse("KEYS_UNAVAILABLE", "the key set could not be fetched", e);
      throw this.lastFailure;
    }
  }

  private replace(next: KeySet): void {
    for (const kid of this.keys?.kids() ?? []) {
      if (!next.names(kid)) {
        this.removed.delete(kid);
        this.removed.add(kid);
      }
    }
    for (const kid of next.kids()) this.removed.delete(kid);
    while (this.removed.size > rememberedRemovedKids) this.removed.delete(this.removed.values().next().value!);
    this.keys = next;
  }
}

/** An entity tag without its weakness marker (W/): the weak comparison of RFC 9110 8.8.3.2. */
function opaqueTag(etag: string): string {
  return etag.trim().replace(/^W\//, "");
}

/**
 * The most a key set or discovery document may weigh, decoded (Tessera's are a few KiB: even a
 * key rotated every 10 minutes for the 30 days of a refresh token stays under it). Bounds the
 * memory and the parsing a hostile or broken endpoint (or a compressed bomb) can cost.
 */
export const MAX_DOCUMENT_BYTES = 1024 * 1024;

/**
 * GET `url` as JSON: 200 only, no redirects (refused, or followed by a custom fetch), at most
 * MAX_DOCUMENT_BYTES, within `timeoutMs`. With `etag` (of a copy held), conditionally:
 * If-None-Match, and 304 is `notModified`, without a body. Failures are KEYS_UNAVAILABLE.
 */
export async function fetchJson(
  fetchImpl: typeof globalThis.fetch,
  url: URL,
  timeoutMs: number,
  accept: string,
  etag?: string,
): Promise<{ body: unknown; headers: Headers; notModified: boolean }> {
  const signal = AbortSignal.timeout(timeoutMs);
  const timedOut = () => refuse("KEYS_UNAVAILABLE", `GET ${redactedUrl(url)} timed out after ${timeoutMs} ms`, signal.reason);
  let res: Response;
  try {
    res = await responseBefore(signal, fetchImpl(url, { method: "GET", headers: { accept, ...(etag !== undefined && { "if-none-match": etag }) }, redirect: "error", signal }));
  } catch (e) {
    if (signal.aborted) throw timedOut();
    throw refuse("KEYS_UNAVAILABLE", `GET ${redactedUrl(url)} failed`, e);
  }
  if (res.redirected || res.status !== 200) {
    await res.body?.cancel().catch(() => {});
    // A custom fetch may follow a redirect whatever `redirect` says: its answer is another URL's.
    if (res.redirected) throw refuse("KEYS_UNAVAILABLE", `GET ${redactedUrl(url)} was redirected: the key set and the discovery document are read at their own URL only`);
    if (res.status === 304 && etag !== undefined) return { body: undefined, headers: res.headers, notModified: true };
    throw refuse("KEYS_UNAVAILABLE", `GET ${redactedUrl(url)} answered HTTP ${res.status}`);
  }
  const text = await boundedText(res, signal).catch((e: unknown) => {
    if (e === tooLarge) throw refuse("KEYS_UNAVAILABLE", `GET ${redactedUrl(url)} answered more than ${MAX_DOCUMENT_BYTES} bytes`);
    if (signal.aborted) throw timedOut();
    throw refuse("KEYS_UNAVAILABLE", `GET ${redactedUrl(url)} failed`, e);
  });
  try {
    return { body: JSON.parse(text), headers: res.headers, notModified: false };
  } catch (e) {
    // JSON.parse's message quotes a few characters of the answer as they are (a line break, a
    // bidirectional override: a forged log line): the cause says it with those escaped.
    throw refuse("KEYS_UNAVAILABLE", `GET ${redactedUrl(url)} did not answer JSON`, new SyntaxError(printable(e instanceof Error ? e.message : String(e))));
  }
}

const tooLarge = Symbol("too large");

/**
 * The response, or the signal's reason once it aborts: a fetch that ignores the signal is not
 * waited for past the timeout (nor would every verification after it, sharing its fetch). A
 * response that comes later is discarded.
 */
function responseBefore(signal: AbortSignal, fetching: Promise<Response>): Promise<Response> {
  return new Promise((resolve, reject) => {
    const abort = () => reject(signal.reason);
    signal.addEventListener("abort", abort, { once: true });
    fetching.then(
      (res) => {
        signal.removeEventListener("abort", abort);
        if (signal.aborted) void res.body?.cancel().catch(() => {});
        resolve(res);
      },
      (e: unknown) => {
        signal.removeEventListener("abort", abort);
        reject(e);
      },
    );
  });
}

/** The body as text (UTF-8), read no further than MAX_DOCUMENT_BYTES; stops when `signal` aborts. */
async function boundedText(res: Response, signal: AbortSignal): Promise<string> {
  signal.throwIfAborted();
  if (res.body === null) return "";
  const reader = res.body.getReader();
  // A fetch that ignores the signal still stops reading at the timeout.
  const stop = () => void reader.cancel(signal.reason).catch(() => {});
  signal.addEventListener("abort", stop, { once: true });
  try {
    const chunks: Uint8Array[] = [];
    let size = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (signal.aborted) throw signal.reason;
      if (done) break;
      size += value.byteLength;
      if (size > MAX_DOCUMENT_BYTES) {
        await reader.cancel().catch(() => {});
        throw tooLarge;
      }
      chunks.push(value);
    }
    // As res.json() reads it: UTF-8, a byte order mark skipped.
    return new TextDecoder().decode(Buffer.concat(chunks, size));
  } finally {
    signal.removeEventListener("abort", stop);
  }
}
