// The verifier's key set cache, against a key set whose answers the test writes (a fetch
// function, no network): freshness as Cache-Control says (max-age less Age, no-store, none),
// bounded by the cooldown and maxCacheSeconds; revalidation with If-None-Match (304); failures; which keys of a set are used; the
// algorithm list. Tokens are signed here with Tessera's claims.
import assert from "node:assert/strict";
import { createPublicKey } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { exportJWK, generateKeyPair, SignJWT, type JWK } from "jose";
import { createTokenVerifier, type TokenVerifierOptions } from "../src/index.js";
import { refused, TestClock } from "./support.js";

interface Served {
  status?: number;
  headers?: Record<string, string>;
  keys?: unknown[];
  body?: string;
}

/** A key set whose answer the test sets, counting the requests and recording their If-None-Match. */
function keySet(first: Served) {
  let answer = first;
  let requests = 0;
  const ifNoneMatch: Array<string | null> = [];
  const fetch: typeof globalThis.fetch = async (_input, init) => {
    requests++;
    ifNoneMatch.push(new Headers(init?.headers).get("if-none-match"));
    if (answer.status === 0) throw new TypeError("fetch failed");
    // A 304 has no body.
    return new Response(answer.status === 304 ? null : (answer.body ?? JSON.stringify({ keys: answer.keys ?? [] })), {
      status: answer.status ?? 200,
      headers: { "content-type": "application/json", ...answer.headers },
    });
  };
  return {
    fetch,
    serve: (next: Served) => (answer = next),
    ifNoneMatch,
    get requests() {
      return requests;
    },
  };
}

async function signer(alg: "EdDSA" | "ES256" = "EdDSA", kid = `kid-${alg}-${Math.random().toString(36).slice(2)}`) {
  const { publicKey, privateKey } = alg === "EdDSA" ? await generateKeyPair("EdDSA", { crv: "Ed25519" }) : await generateKeyPair("ES256");
  const jwk: JWK = { ...(await exportJWK(publicKey)), kid, alg, use: "sig" };
  return {
    kid,
    jwk,
    /** A seed 004 access token signed by this key, issued at `nowMs`. */
    token: (nowMs: number, header: Record<string, unknown> = {}) => {
      const iat = Math.floor(nowMs / 1000);
      return new SignJWT({ iss: "tessera", sub: "u-1", user: "ada", aud: "tessera", token_type: "access_token", authentication_method: "password", iat, nbf: iat, exp: iat + 900 })
        .setProtectedHeader({ alg, kid, typ: "JWT", ...header })
        .sign(privateKey);
    },
  };
}

describe("@tessera/client key set cache", () => {
  const verifier = (set: { fetch: typeof globalThis.fetch }, clock: TestClock, more: Partial<TokenVerifierOptions> = {}) =>
    createTokenVerifier({ jwksUrl: "https://tessera.test/.well-known/jwks.json", issuer: "tessera", audience: "tessera", fetch: set.fetch, now: clock.now, ...more } as TokenVerifierOptions);

  async function fetchesOver(served: Served, checkpoints: number[], more: Partial<TokenVerifierOptions> = {}): Promise<number[]> {
    const key = await signer();
    const set = keySet({ ...served, keys: [key.jwk] });
    const clock = new TestClock();
    const v = verifier(set, clock, more);
    const token = await key.token(clock.ms);
    const seen: number[] = [];
    let at = 0;
    for (const t of checkpoints) {
      clock.advanceSeconds(t - at);
      at = t;
      await v.verify(token);
      seen.push(set.requests);
    }
    return seen;
  }

  it("Cache-Control max-age=60: fetched again at 60 s, not before", async () => {
    assert.deepEqual(await fetchesOver({ headers: { "cache-control": "public, max-age=60" } }, [0, 59, 60, 119, 120]), [1, 1, 2, 2, 3]);
  });

  it("Age is deducted from max-age (a cache in between held the answer)", async () => {
    assert.deepEqual(await fetchesOver({ headers: { "cache-control": "max-age=60", age: "45" } }, [0, 14, 15]), [1, 1, 2]);
  });

  it("no-store, no-cache and max-age=0: fetched again after the cooldown (10 s), not on every token", async () => {
    for (const cacheControl of ["no-store", "no-cache", "max-age=0", "max-age=banana"]) {
      assert.deepEqual(await fetchesOver({ headers: { "cache-control": cacheControl } }, [0, 5, 9, 10]), [1, 1, 1, 2], cacheControl);
    }
  });

  it("no Cache-Control: defaultCacheSeconds (300 by default)", async () => {
    assert.deepEqual(await fetchesOver({}, [0, 299, 300]), [1, 1, 2]);
    assert.deepEqual(await fetchesOver({}, [0, 29, 30], { defaultCacheSeconds: 30 }), [1, 1, 2]);
  });

  it("a max-age beyond maxCacheSeconds is cut to it", async () => {
    assert.deepEqual(await fetchesOver({ headers: { "cache-control": "max-age=31536000" } }, [0, 599, 600], { maxCacheSeconds: 600 }), [1, 1, 2]);
  });

  it("cooldownSeconds is the least time between fetches: of a set sent no-store, and of a flood of unknown kids (one fetch a cooldown, shared)", async () => {
    assert.deepEqual(await fetchesOver({ headers: { "cache-control": "no-store" } }, [0, 29, 30], { cooldownSeconds: 30 }), [1, 1, 2]);
    const key = await signer();
    const set = keySet({ keys: [key.jwk], headers: { "cache-control": "max-age=300" } });
    const clock = new TestClock();
    const v = verifier(set, clock, { cooldownSeconds: 30 });
    await v.verify(await key.token(clock.ms));
    const strangers = await Promise.all(Array.from({ length: 20 }, () => signer()));
    const flood = async () => Promise.all(strangers.map(async (s) => refused(v.verify(await s.token(clock.ms)), "UNKNOWN_KEY")));
    const seen: number[] = [];
    for (const t of [10, 19, 10]) {
      clock.advanceSeconds(t);
      await flood();
      seen.push(set.requests);
    }
    assert.deepEqual(seen, [1, 1, 2], "at 10 s, 29 s and 39 s");
  });

  it("clockToleranceSeconds is how far ahead an nbf may be, and an iat when more than 60 s", async () => {
    const key = await signer();
    const clock = new TestClock();
    const set = keySet({ keys: [key.jwk] });
    const outcome = async (aheadSeconds: number, more: Partial<TokenVerifierOptions>) => {
      try {
        return (await verifier(set, clock, more).verify(await key.token(clock.ms + aheadSeconds * 1000))).kind;
      } catch (e) {
        return (e as { code?: string }).code;
      }
    };
    assert.deepEqual(
      [await outcome(20, {}), await outcome(20, { clockToleranceSeconds: 30 }), await outcome(31, { clockToleranceSeconds: 30 })],
      ["TOKEN_NOT_YET_VALID", "jwt", "TOKEN_NOT_YET_VALID"],
      "nbf (and iat) 20 s ahead; 31 s",
    );
    assert.deepEqual(
      [await outcome(90, { clockToleranceSeconds: 120 }), await outcome(121, { clockToleranceSeconds: 120 })],
      ["jwt", "TOKEN_NOT_YET_VALID"],
      "nbf and iat 90 s ahead; 121 s",
    );
  });

  it("a clock moved back makes the set stale", async () => {
    assert.deepEqual(await fetchesOver({ headers: { "cache-control": "max-age=600" } }, [100, 200, 50]), [1, 1, 2]);
  });

  it("a set with an ETag is asked for again with If-None-Match: 304 keeps the keys, fresh for the 304's max-age", async () => {
    const key = await signer();
    const set = keySet({ keys: [key.jwk], headers: { "cache-control": "max-age=60", etag: '"v1"' } });
    const clock = new TestClock();
    const v = verifier(set, clock);
    const token = await key.token(clock.ms);
    await v.verify(token);
    set.serve({ status: 304, headers: { "cache-control": "max-age=120", etag: '"v1"' } });
    clock.advanceSeconds(60);
    assert.equal((await v.verify(token)).kind, "jwt");
    assert.deepEqual(set.ifNoneMatch, [null, '"v1"']);
    clock.advanceSeconds(119);
    await v.verify(token);
    assert.equal(set.requests, 2, "fresh for the 304's max-age (120 s)");
    clock.advanceSeconds(1);
    assert.equal((await v.verify(token)).kind, "jwt");
    assert.deepEqual(set.ifNoneMatch, [null, '"v1"', '"v1"']);
    // A token of a kid the set does not hold: asked for again after the cooldown, still 304.
    clock.advanceSeconds(10);
    await refused(v.verify(await (await signer()).token(clock.ms)), "UNKNOWN_KEY");
    assert.deepEqual(set.ifNoneMatch, [null, '"v1"', '"v1"', '"v1"']);
    assert.equal((await v.verify(token)).kind, "jwt");
  });

  it("a 304 without Cache-Control: fresh for the max-age the keys came with (less the 304's Age)", async () => {
    const key = await signer();
    const set = keySet({ keys: [key.jwk], headers: { "cache-control": "max-age=60", etag: '"v1"' } });
    const clock = new TestClock();
    const v = verifier(set, clock);
    const token = await key.token(clock.ms);
    await v.verify(token);
    set.serve({ status: 304 });
    clock.advanceSeconds(60);
    await v.verify(token);
    clock.advanceSeconds(59);
    await v.verify(token);
    assert.equal(set.requests, 2);
    set.serve({ status: 304, headers: { age: "30" } });
    clock.advanceSeconds(1);
    await v.verify(token);
    assert.equal(set.requests, 3);
    clock.advanceSeconds(29);
    await v.verify(token);
    assert.equal(set.requests, 3);
    clock.advanceSeconds(1);
    await v.verify(token);
    assert.equal(set.requests, 4);
  });

  it("a changed set (a new ETag) replaces the keys, and its ETag is the one sent next", async () => {
    const a = await signer();
    const b = await signer();
    const set = keySet({ keys: [a.jwk], headers: { "cache-control": "max-age=60", etag: '"v1"' } });
    const clock = new TestClock();
    const v = verifier(set, clock);
    const tokenA = await a.token(clock.ms);
    await v.verify(tokenA);
    set.serve({ keys: [b.jwk], headers: { "cache-control": "max-age=60", etag: '"v2"' } });
    clock.advanceSeconds(10);
    assert.equal((await v.verify(await b.token(clock.ms))).kind, "jwt");
    await refused(v.verify(tokenA), "KEY_REMOVED");
    set.serve({ status: 304, headers: { "cache-control": "max-age=60", etag: '"v2"' } });
    clock.advanceSeconds(60);
    assert.equal((await v.verify(await b.token(clock.ms))).kind, "jwt");
    assert.deepEqual(set.ifNoneMatch, [null, '"v1"', '"v2"']);
  });

  // RFC 9111 4.3.4: a 304 updates only the stored response its validator names. One naming
  // another ETag (a cache in between, a broken server) says nothing of the keys held; taken as a
  // confirmation, it gave them the new ETag, and every 304 to that after kept them: a key removed
  // since (revoked) went on verifying.
  it("a 304 naming another ETag than the keys held: they are not taken as current; the set is fetched again unconditionally", async () => {
    const a = await signer();
    const b = await signer();
    let current: "v1" | "v2" = "v1";
    const ifNoneMatch: Array<string | null> = [];
    const fetch: typeof globalThis.fetch = async (_input, init) => {
      const condition = new Headers(init?.headers).get("if-none-match");
      ifNoneMatch.push(condition);
      const headers = { "content-type": "application/json", "cache-control": "max-age=60", etag: `"${current}"` };
      if (current === "v2" && condition !== null) return new Response(null, { status: 304, headers });
      return new Response(JSON.stringify({ keys: [current === "v1" ? a.jwk : b.jwk] }), { status: 200, headers });
    };
    const clock = new TestClock();
    const v = verifier({ fetch }, clock);
    const tokenA = await a.token(clock.ms);
    await v.verify(tokenA);
    current = "v2"; // a removed, b added; conditional requests answered 304 "v2" whatever they name
    clock.advanceSeconds(60);
    await refused(v.verify(tokenA), "KEY_REMOVED");
    assert.equal((await v.verify(await b.token(clock.ms))).kind, "jwt");
    assert.deepEqual(ifNoneMatch, [null, '"v1"', null]);
  });

  it("a set without an ETag is asked for unconditionally, and a 304 to that is KEYS_UNAVAILABLE", async () => {
    const key = await signer();
    const set = keySet({ keys: [key.jwk], headers: { "cache-control": "max-age=60", etag: '"v1"' } });
    const clock = new TestClock();
    const v = verifier(set, clock);
    const token = await key.token(clock.ms);
    await v.verify(token);
    set.serve({ keys: [key.jwk], headers: { "cache-control": "max-age=60" } });
    clock.advanceSeconds(60);
    await v.verify(token);
    set.serve({ status: 304, headers: { "cache-control": "max-age=60" } });
    clock.advanceSeconds(60);
    await refused(v.verify(token), "KEYS_UNAVAILABLE", "GET https://tessera.test/.well-known/jwks.json answered HTTP 304");
    assert.deepEqual(set.ifNoneMatch, [null, '"v1"', null]);
  });

  it("concurrent verifications with a cold cache share one fetch", async () => {
    const key = await signer();
    const set = keySet({ keys: [key.jwk] });
    const clock = new TestClock();
    const v = verifier(set, clock);
    const token = await key.token(clock.ms);
    const results = await Promise.all(Array.from({ length: 10 }, () => v.verify(token)));
    assert.equal(results.length, 10);
    assert.equal(set.requests, 1);
  });

  it("a set of thousands of P-256 keys: a fetch imports only the key a token names, and holds the event loop for less than half of what importing them all costs", async () => {
    // 4320 keys: one rotated in every 10 minutes for 30 days; the same public key under every
    // kid (an import costs the same whatever the point).
    const key = await signer("ES256");
    const keys = Array.from({ length: 4320 }, (_, i) => ({ ...key.jwk, kid: i === 4000 ? key.kid : `other-${i}` }));
    const set = keySet({ keys });
    const clock = new TestClock();
    const token = await key.token(clock.ms);
    await verifier(set, clock).verify(token); // warm up
    const importAll = () => {
      const started = performance.now();
      for (const k of keys) createPublicKey({ key: { kty: k.kty, crv: k.crv, x: k.x, y: k.y } as never, format: "jwk" });
      return performance.now() - started;
    };
    const timedVerify = async () => {
      const v = verifier(set, clock);
      const started = performance.now();
      assert.equal((await v.verify(token)).kind, "jwt");
      return performance.now() - started;
    };
    const rounds = [0, 1, 2].map(() => ({ all: 0, fetch: 0 }));
    for (const round of rounds) {
      round.all = importAll();
      round.fetch = await timedVerify();
    }
    const median = (values: number[]) => values.sort((a, b) => a - b)[1]!;
    const all = median(rounds.map((r) => r.all));
    const fetch = median(rounds.map((r) => r.fetch));
    assert.ok(fetch < all / 2, `a cold verification took ${fetch.toFixed(1)} ms; importing the ${keys.length} keys takes ${all.toFixed(1)} ms`);
  });

  it("a stale set that cannot be fetched: KEYS_UNAVAILABLE, one attempt per cooldown, and verifying again once it can", async () => {
    const key = await signer();
    const set = keySet({ keys: [key.jwk], headers: { "cache-control": "max-age=60" } });
    const clock = new TestClock();
    const v = verifier(set, clock);
    const token = await key.token(clock.ms);
    await v.verify(token);
    set.serve({ status: 503 });
    clock.advanceSeconds(60);
    await refused(v.verify(token), "KEYS_UNAVAILABLE", "GET https://tessera.test/.well-known/jwks.json answered HTTP 503");
    clock.advanceSeconds(9);
    await refused(v.verify(token), "KEYS_UNAVAILABLE", "GET https://tessera.test/.well-known/jwks.json answered HTTP 503");
    assert.equal(set.requests, 2, "no second attempt within the cooldown");
    set.serve({ status: 0 });
    clock.advanceSeconds(1);
    await refused(v.verify(token), "KEYS_UNAVAILABLE", "GET https://tessera.test/.well-known/jwks.json failed");
    set.serve({ body: "<html>", headers: {} });
    clock.advanceSeconds(10);
    await refused(v.verify(token), "KEYS_UNAVAILABLE", "GET https://tessera.test/.well-known/jwks.json did not answer JSON");
    set.serve({ body: '{"kids":[]}' });
    clock.advanceSeconds(10);
    await refused(v.verify(token), "KEYS_UNAVAILABLE", 'the key set at https://tessera.test/.well-known/jwks.json has no "keys" array');
    set.serve({ keys: [key.jwk] });
    clock.advanceSeconds(10);
    assert.equal((await v.verify(token)).kind, "jwt");
    assert.equal(set.requests, 6);
  });

  it("an answer over 1 MiB (a hostile or broken endpoint, a compression bomb): KEYS_UNAVAILABLE, read no further; one under it is used", async () => {
    const key = await signer();
    const clock = new TestClock();
    // {"keys":[<key>]} with `padding` bytes of whitespace, streamed in 64 KiB chunks; counts the bytes read.
    const padded = (padding: number) => {
      const served = { requests: 0, bytesRead: 0 };
      const head = Buffer.from(`{"keys":[${JSON.stringify(key.jwk)}]`);
      const total = head.length + padding + 1;
      const fetch: typeof globalThis.fetch = async () => {
        served.requests++;
        let offset = 0;
        const body = new ReadableStream<Uint8Array>({
          pull(controller) {
            if (offset >= total) return controller.close();
            const chunk = Buffer.alloc(Math.min(65536, total - offset), " ");
            if (offset === 0) head.copy(chunk);
            if (offset + chunk.length === total) chunk[chunk.length - 1] = 0x7d; // }
            offset += chunk.length;
            served.bytesRead = offset;
            controller.enqueue(chunk);
          },
        });
        return new Response(body, { status: 200, headers: { "content-type": "application/json" } });
      };
      return { fetch, served };
    };
    const huge = padded(64 * 1024 * 1024);
    const v = verifier(huge, clock);
    await refused(v.verify(await key.token(clock.ms)), "KEYS_UNAVAILABLE", "GET https://tessera.test/.well-known/jwks.json answered more than 1048576 bytes");
    assert.ok(huge.served.bytesRead <= 1024 * 1024 + 2 * 65536, `read ${huge.served.bytesRead} bytes`);
    const under = padded(1024 * 1024 - 1024);
    assert.equal((await verifier(under, clock).verify(await key.token(clock.ms))).kind, "jwt");
  });

  it("a timeoutMs beyond what a Node timer holds (2^31 ms and more) is the longest timeout, not one that fires at once", async () => {
    const key = await signer();
    const set = keySet({ keys: [key.jwk] });
    // Answers after 20 ms, as a real fetch does, unless its signal has aborted by then.
    const fetch: typeof globalThis.fetch = async (input, init) => {
      await new Promise((resolve) => setTimeout(resolve, 20));
      init?.signal?.throwIfAborted();
      return set.fetch(input, init);
    };
    const clock = new TestClock();
    for (const timeoutMs of [2 ** 31 - 1, 2 ** 31, Number.MAX_SAFE_INTEGER]) {
      const v = verifier({ fetch }, clock, { timeoutMs });
      assert.equal((await v.verify(await key.token(clock.ms))).kind, "jwt", `timeoutMs ${timeoutMs}`);
    }
  });

  it("a fetch that does not answer within timeoutMs, though it ignores its signal (headers or body): KEYS_UNAVAILABLE at the timeout, and the next attempt after the cooldown verifies", async function () {
    this.timeout(5000);
    const key = await signer();
    const set = keySet({ keys: [key.jwk] });
    let stall: "headers" | "body" | undefined = "headers";
    // A custom fetch (a proxy's, another library's) that never looks at init.signal.
    const fetch: typeof globalThis.fetch = async (input, init) => {
      if (stall === "headers") return new Promise<Response>(() => {});
      if (stall === "body") return new Response(new ReadableStream<Uint8Array>({ pull: () => new Promise<void>(() => {}) }), { status: 200 });
      return set.fetch(input, init);
    };
    const clock = new TestClock();
    const v = verifier({ fetch }, clock, { timeoutMs: 50 });
    const token = await key.token(clock.ms);
    await refused(v.verify(token), "KEYS_UNAVAILABLE", "GET https://tessera.test/.well-known/jwks.json timed out after 50 ms");
    stall = "body";
    clock.advanceSeconds(10);
    await refused(v.verify(token), "KEYS_UNAVAILABLE", "GET https://tessera.test/.well-known/jwks.json timed out after 50 ms");
    stall = undefined;
    clock.advanceSeconds(10);
    assert.equal((await v.verify(token)).kind, "jwt");
  });

  it("an unknown kid whose fetch fails: KEYS_UNAVAILABLE for it, while the fresh set keeps verifying its own keys", async () => {
    const key = await signer();
    const rotated = await signer();
    const set = keySet({ keys: [key.jwk] });
    const clock = new TestClock();
    const v = verifier(set, clock);
    const token = await key.token(clock.ms);
    await v.verify(token);
    set.serve({ status: 500 });
    clock.advanceSeconds(10);
    await refused(v.verify(await rotated.token(clock.ms)), "KEYS_UNAVAILABLE");
    assert.equal((await v.verify(token)).kind, "jwt");
  });

  it("a removed key: KEY_REMOVED once the set is fetched without it; a kid never seen: UNKNOWN_KEY", async () => {
    const a = await signer();
    const b = await signer();
    const set = keySet({ keys: [a.jwk, b.jwk], headers: { "cache-control": "max-age=60" } });
    const clock = new TestClock();
    const v = verifier(set, clock);
    const tokenA = await a.token(clock.ms);
    await v.verify(tokenA);
    set.serve({ keys: [b.jwk], headers: { "cache-control": "max-age=60" } });
    clock.advanceSeconds(60);
    await refused(v.verify(tokenA), "KEY_REMOVED", "the token's key has been removed from the key set (retired or revoked)");
    await refused(v.verify(await (await signer()).token(clock.ms)), "UNKNOWN_KEY");
    // Back in the set (a revocation undone): verifies again.
    set.serve({ keys: [a.jwk, b.jwk] });
    clock.advanceSeconds(60);
    assert.equal((await v.verify(tokenA)).kind, "jwt");
  });

  it("keys used from a set: only signature keys of an accepted algorithm, without private members; alg inferred from the curve when absent", async () => {
    const ed = await signer("EdDSA");
    const es = await signer("ES256");
    const clock = new TestClock();
    const cases: Array<[string, Record<string, unknown>, "ok" | "UNKNOWN_KEY"]> = [
      ["as published", {}, "ok"],
      ['no "alg"', { alg: undefined }, "ok"],
      ['use "enc"', { use: "enc" }, "UNKNOWN_KEY"],
      ['key_ops without "verify"', { key_ops: ["encrypt"] }, "UNKNOWN_KEY"],
      ['key_ops ["verify"]', { key_ops: ["verify"] }, "ok"],
      ['alg "HS256"', { alg: "HS256" }, "UNKNOWN_KEY"],
      ["a private member", { d: "AAAA" }, "UNKNOWN_KEY"],
      ["another curve than its alg's", { crv: "P-384" }, "UNKNOWN_KEY"],
      ["a broken public key", { x: "AAAA" }, "UNKNOWN_KEY"],
    ];
    for (const [name, change, expected] of cases) {
      for (const key of [ed, es]) {
        const jwk = JSON.parse(JSON.stringify({ ...key.jwk, ...change }));
        const v = verifier(keySet({ keys: [{ kty: "oct", k: "c2VjcmV0", kid: "secret" }, jwk] }), clock);
        const p = v.verify(await key.token(clock.ms));
        if (expected === "ok") assert.equal((await p).kind, "jwt", `${name} (${key.jwk.alg})`);
        else await refused(p, expected).catch((e) => assert.fail(`${name} (${key.jwk.alg}): ${e.message}`));
      }
    }
  });

  it("a kid given twice: its first usable key verifies (a key that does not import, or is not for signatures, is passed over)", async () => {
    const key = await signer("ES256");
    const other = await signer("ES256", key.kid);
    const clock = new TestClock();
    const token = await key.token(clock.ms);
    const broken = { ...key.jwk, x: "AAAA" };
    const enc = { ...other.jwk, use: "enc" };
    assert.equal((await verifier(keySet({ keys: [broken, enc, key.jwk, other.jwk] }), clock).verify(token)).kind, "jwt");
    await refused(verifier(keySet({ keys: [other.jwk, key.jwk] }), clock).verify(token), "INVALID_SIGNATURE");
  });

  it("algorithms: only what is configured verifies; none, HS* and unknown names cannot be configured", async () => {
    const ed = await signer("EdDSA");
    const es = await signer("ES256");
    const clock = new TestClock();
    const v = verifier(keySet({ keys: [ed.jwk, es.jwk] }), clock, { algorithms: ["ES256"] });
    assert.equal((await v.verify(await es.token(clock.ms))).kind, "jwt");
    await refused(v.verify(await ed.token(clock.ms)), "UNSUPPORTED_ALGORITHM", 'the token\'s algorithm ("EdDSA") is not accepted');
    for (const alg of ["none", "HS256", "RS256", "eddsa"]) {
      assert.throws(
        () => createTokenVerifier({ jwksUrl: "https://tessera.test/jwks", audience: "tessera", algorithms: [alg as "EdDSA"] }),
        { name: "TypeError", message: `algorithms: "${alg}" is not accepted; only asymmetric signatures (EdDSA, Ed25519, ES256, ES384, ES512)` },
      );
    }
    assert.throws(() => createTokenVerifier({ jwksUrl: "https://tessera.test/jwks", audience: "tessera", algorithms: [] }), {
      message: "algorithms: give at least one algorithm",
    });
  });

  it("options are checked when the verifier is made", () => {
    assert.throws(() => createTokenVerifier({ jwksUrl: "https://tessera.test/jwks" }), {
      name: "TypeError",
      message: "createTokenVerifier: give an audience (JWT API tokens), a clientId (session tokens), or both",
    });
    assert.throws(() => createTokenVerifier({ issuer: "tessera", audience: "tessera" }), { name: "TypeError", message: "issuer: not a URL" });
    // The discovery document's path is added to the issuer's: after a query or a fragment, the
    // document was asked for at the issuer's root (GET https://tessera.test/?tenant=a/.well-known/...).
    for (const issuer of ["https://tessera.test/?tenant=a", "https://tessera.test?", "https://tessera.test/#a"]) {
      assert.throws(() => createTokenVerifier({ issuer, audience: "tessera" }), { name: "TypeError", message: "issuer: must have no query or fragment (an OpenID Connect issuer has none)" });
    }
    assert.throws(() => createTokenVerifier({ jwksUrl: "ftp://tessera.test/jwks", audience: "tessera" }), { message: "jwksUrl: must be an http or https URL" });
    // fetch refuses such a URL: it would fail every verification, with the password in its message.
    for (const url of ["https://ops:hunter2@tessera.test/jwks", "https://ops@tessera.test/jwks"]) {
      assert.throws(() => createTokenVerifier({ jwksUrl: url, audience: "tessera" }), (e: Error) => e.message === "jwksUrl: must not carry credentials (user:password@)" && !e.message.includes("hunter2"));
      assert.throws(() => createTokenVerifier({ issuer: url, audience: "tessera" }), { name: "TypeError", message: "issuer: must not carry credentials (user:password@)" });
    }
    assert.throws(() => createTokenVerifier({ jwksUrl: "https://tessera.test/jwks", audience: "tessera", clockToleranceSeconds: -1 }), {
      message: "clockToleranceSeconds: must be a non-negative number",
    });
    assert.throws(() => createTokenVerifier({ jwksUrl: "https://tessera.test/jwks", clientId: [""] }), { message: "clientId: every client id must be a non-empty string" });
    assert.throws(() => createTokenVerifier({ audience: "tessera" } as TokenVerifierOptions), { message: "createTokenVerifier: give an issuer (discovery) or a jwksUrl" });
  });

  it("claims Tessera always sets are required: a token without them is INVALID_CLAIMS", async () => {
    const { publicKey, privateKey } = await generateKeyPair("EdDSA", { crv: "Ed25519" });
    const jwk = { ...(await exportJWK(publicKey)), kid: "k", alg: "EdDSA" };
    const clock = new TestClock();
    const v = verifier(keySet({ keys: [jwk] }), clock, { clientId: "web" });
    const iat = Math.floor(clock.ms / 1000);
    const good = { iss: "tessera", sub: "u-1", aud: "tessera", token_type: "access_token", user: "ada", authentication_method: "password", iat, exp: iat + 60 };
    const session = { iss: "tessera", sub: "u-1", aud: "web", sid: "s-1", jti: "j-1", iat, exp: iat + 60 };
    const sign = (claims: Record<string, unknown>) => new SignJWT(claims).setProtectedHeader({ alg: "EdDSA", kid: "k", typ: "JWT" }).sign(privateKey);
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ ...good, exp: undefined }, 'the token\'s "exp" claim is missing or malformed'],
      [{ ...good, exp: "soon" }, 'the token\'s "exp" claim is missing or malformed'],
      [{ ...good, nbf: "now" }, 'the token\'s "nbf" claim is missing or malformed'],
      [{ ...good, iss: undefined }, 'the token\'s "iss" claim is missing or malformed'],
      [{ ...good, sub: 7 }, 'the token has no "sub"'],
      [{ ...good, aud: undefined }, 'the token\'s "aud" claim is missing or malformed'],
      [{ ...good, user: undefined }, 'the token has no "user"'],
      [{ ...good, authentication_method: "magic" }, 'the token has no valid "authentication_method"'],
      [{ ...session, sid: 5 }, 'the token has no "sid"'],
      [{ ...session, jti: undefined }, 'the token has no "jti"'],
      [{ ...session, sid: undefined }, "not a Tessera access token (neither token_type nor sid)"],
    ];
    for (const [claims, message] of cases) await refused(v.verify(await sign(claims)), "INVALID_CLAIMS", message);
    // An empty aud names no audience (jose's rule): the token is not for this service.
    await refused(v.verify(await sign({ ...good, aud: [] })), "WRONG_AUDIENCE", "the token was issued for another audience");
    // aud as an array naming the audience (RFC 7519's form) is refused for a JWT API token, as
    // Tessera refuses it, and accepted for a session token.
    await refused(v.verify(await sign({ ...good, aud: ["other", "tessera"] })), "WRONG_AUDIENCE", "the token was issued for another audience");
    assert.equal((await v.verify(await sign({ ...session, aud: ["other", "web"] }))).kind, "session");
    assert.equal((await v.verify(await sign(session))).kind, "session");
  });

  // What a message quotes of a token's header or claims or of a served document is bounded: a
  // caller's 6 KB "alg", a 5 KB "token_type", or a discovery document's 1 MiB "issuer", went whole
  // into every refusal's message (onRefusal logs; the caller's UNAUTHENTICATED answer), and
  // JSON.stringify leaves C1 controls and bidirectional formatting characters as they are.
  it("a message quotes at most 64 characters of a token's alg or token_type or a discovery document's issuer, with its length, and escapes controls and bidirectional formatting", async () => {
    const clock = new TestClock();
    const set = keySet({ keys: [] });
    const segment = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");
    const long = `\u202e${"A".repeat(2999)}`;
    const token = `${segment({ alg: long, kid: "k" })}.${segment({ sub: "u" })}.AAAA`;
    await refused(verifier(set, clock).verify(token), "UNSUPPORTED_ALGORITHM", `the token's algorithm ("\\u202e${"A".repeat(57)}... (3002 characters)) is not accepted`);
    // A token_type other than access_token, in a token whose signature verifies.
    const { publicKey, privateKey } = await generateKeyPair("EdDSA", { crv: "Ed25519" });
    const typed = verifier(keySet({ keys: [{ ...(await exportJWK(publicKey)), kid: "k", alg: "EdDSA" }] }), clock);
    const iat = Math.floor(clock.ms / 1000);
    for (const [tokenType, quoted] of [
      ["\u202eid_token\u0085", '"\\u202eid_token\\u0085"'],
      [`\u009b${"x".repeat(5000)}`, `"\\u009b${"x".repeat(57)}... (5003 characters)`],
      [{ nested: ["x".repeat(100)] }, `{"nested":["${"x".repeat(52)}... (115 characters)`],
    ] as Array<[unknown, string]>) {
      const claims = { iss: "tessera", sub: "u-1", aud: "tessera", token_type: tokenType, iat, exp: iat + 60 };
      const signed = await new SignJWT(claims).setProtectedHeader({ alg: "EdDSA", kid: "k", typ: "JWT" }).sign(privateKey);
      await refused(typed.verify(signed), "WRONG_TOKEN_TYPE", `not an access token (token_type ${quoted})`);
    }
    const discovery: typeof globalThis.fetch = async () =>
      new Response(JSON.stringify({ issuer: `\u0085${"x".repeat(100_000)}`, jwks_uri: "https://tessera.test/jwks" }), { headers: { "content-type": "application/json" } });
    const v = createTokenVerifier({ issuer: "https://tessera.test", audience: "tessera", fetch: discovery, now: clock.now });
    const key = await signer();
    await refused(
      v.verify(await key.token(clock.ms)),
      "KEYS_UNAVAILABLE",
      `the discovery document at https://tessera.test/.well-known/openid-configuration names another issuer ("\\u0085${"x".repeat(57)}... (100003 characters), not "https://tessera.test")`,
    );
  });

  // fetch refuses a URL with credentials, naming the URL: a discovery document whose jwks_uri
  // carried user:password@ failed every verification with the password in its message and cause
  // (onRefusal's log lines), as a configured jwksUrl would have before it was refused.
  // JSON.parse's message quotes some characters of the text it refused as they are: a served page
  // beginning with a line break or a bidirectional override put them in the refusal's cause,
  // which a logger writes out (a forged log line, text shown reversed).
  it("an answer that is not JSON: KEYS_UNAVAILABLE, its cause quoting the answer with controls and bidirectional formatting escaped", async () => {
    const clock = new TestClock();
    const key = await signer();
    for (const [body, escaped] of [
      ["<html>\nINFO all keys rotated", '"<html>\\u000aINF"'],
      ["<\u202etxt.exe", '"<\\u202etxt.exe"'],
      ["x\u0085\u2066y\u007f", '"x\\u0085\\u2066y\\u007f"'],
    ]) {
      const e = await refused(verifier(keySet({ body, headers: {} }), clock).verify(await key.token(clock.ms)), "KEYS_UNAVAILABLE", "GET https://tessera.test/.well-known/jwks.json did not answer JSON");
      const cause = e.cause as Error;
      assert.equal(cause.name, "SyntaxError");
      assert.ok(!/[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]/.test(cause.message), JSON.stringify(cause.message));
      assert.ok(cause.message.includes(escaped), `${JSON.stringify(cause.message)} quotes ${JSON.stringify(escaped)}`);
      // The stack, which loggers write too, begins with that message.
      assert.ok(cause.stack?.startsWith(`SyntaxError: ${cause.message}\n`), JSON.stringify(cause.stack));
    }
  });

  it("a discovery document naming a jwks_uri with credentials (user:password@): KEYS_UNAVAILABLE saying so, without them", async () => {
    const clock = new TestClock();
    const key = await signer();
    for (const jwksUri of ["https://ops:hunter2@tessera.test/jwks", "https://ops@tessera.test/jwks"]) {
      const fetch: typeof globalThis.fetch = async (input, init) => {
        if (String(input).endsWith("/.well-known/openid-configuration")) {
          return new Response(JSON.stringify({ issuer: "https://tessera.test", jwks_uri: jwksUri }), { headers: { "content-type": "application/json" } });
        }
        return globalThis.fetch(input, init);
      };
      const v = createTokenVerifier({ issuer: "https://tessera.test", audience: "tessera", fetch, now: clock.now });
      const e = await refused(
        v.verify(await key.token(clock.ms)),
        "KEYS_UNAVAILABLE",
        'the discovery document at https://tessera.test/.well-known/openid-configuration names a "jwks_uri" with credentials (user:password@), which fetch refuses',
      );
      assert.equal(e.cause, undefined);
      clock.advanceSeconds(10);
    }
  });

  // A key set URL may carry a secret in its query (an API gateway's key): an error quotes the
  // URL, and errors reach logs (onRefusal).
  it("a key set URL with a query, configured or named by the discovery document: KEYS_UNAVAILABLE messages quote it without its query", async () => {
    const clock = new TestClock();
    const key = await signer();
    const failing: typeof globalThis.fetch = async (input) => {
      if (String(input).endsWith("/.well-known/openid-configuration")) {
        return new Response(JSON.stringify({ issuer: "https://tessera.test", jwks_uri: "https://tessera.test/jwks?api_key=s3cret#frag" }), { headers: { "content-type": "application/json" } });
      }
      return new Response("unavailable", { status: 503 });
    };
    for (const [options, message] of [
      [{ jwksUrl: "https://tessera.test/jwks?api_key=s3cret" }, "GET https://tessera.test/jwks?<redacted> answered HTTP 503"],
      [{ issuer: "https://tessera.test" }, "GET https://tessera.test/jwks?<redacted>#<redacted> answered HTTP 503"],
    ] as const) {
      const e = await refused(createTokenVerifier({ ...options, audience: "tessera", fetch: failing, now: clock.now }).verify(await key.token(clock.ms)), "KEYS_UNAVAILABLE", message);
      assert.ok(!e.message.includes("s3cret"));
    }
  });

  // A discovery document's jwks_uri may have a path of up to 1 MiB (the document's bound): every
  // KEYS_UNAVAILABLE message quoted it whole. A URL is cut as a quoted value is, its length said.
  it("a key set URL with a long path, configured or named by the discovery document: KEYS_UNAVAILABLE messages quote at most 256 characters of it, saying its length, still without its query", async () => {
    const clock = new TestClock();
    const key = await signer();
    const path = `/${"x".repeat(1_000_000)}`;
    const failing: typeof globalThis.fetch = async (input) => {
      if (String(input).endsWith("/.well-known/openid-configuration")) {
        return new Response(JSON.stringify({ issuer: "https://tessera.test", jwks_uri: `https://tessera.test${path}?api_key=s3cret#frag` }), { headers: { "content-type": "application/json" } });
      }
      return new Response("unavailable", { status: 503 });
    };
    const shown = `https://tessera.test/${"x".repeat(256 - "https://tessera.test/".length)}... (${"https://tessera.test".length + path.length} characters)`;
    for (const [options, message] of [
      [{ jwksUrl: `https://tessera.test${path}?api_key=s3cret` }, `GET ${shown}?<redacted> answered HTTP 503`],
      [{ issuer: "https://tessera.test" }, `GET ${shown}?<redacted>#<redacted> answered HTTP 503`],
    ] as const) {
      await refused(createTokenVerifier({ ...options, audience: "tessera", fetch: failing, now: clock.now }).verify(await key.token(clock.ms)), "KEYS_UNAVAILABLE", message);
    }
  });

  // The key set is read at its own URL only. The default fetch refuses a redirect (redirect:
  // "error"); a custom fetch that follows it whatever init says (a proxy's, another library's)
  // had its answer taken: a redirect to another origin served keys that verified its tokens.
  it("a key set URL answering a redirect to another origin: KEYS_UNAVAILABLE, whether the fetch refuses it or follows it", async () => {
    const clock = new TestClock();
    const ours = await signer();
    const theirs = await signer();
    const listen = async (handler: Parameters<typeof createServer>[1]): Promise<{ server: Server; url: string }> => {
      const server = createServer(handler);
      await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
      return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
    };
    const elsewhere = await listen((_req, res) => res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ keys: [theirs.jwk] })));
    const tessera = await listen((_req, res) => res.writeHead(302, { location: `${elsewhere.url}/jwks` }).end());
    try {
      const jwksUrl = `${tessera.url}/.well-known/jwks.json`;
      const following: typeof globalThis.fetch = (input, init) => globalThis.fetch(input, { ...init, redirect: "follow" });
      const token = await theirs.token(clock.ms);
      await refused(createTokenVerifier({ jwksUrl, audience: "tessera", now: clock.now }).verify(token), "KEYS_UNAVAILABLE", `GET ${jwksUrl} failed`);
      await refused(
        createTokenVerifier({ jwksUrl, audience: "tessera", fetch: following, now: clock.now }).verify(token),
        "KEYS_UNAVAILABLE",
        `GET ${jwksUrl} was redirected: the key set and the discovery document are read at their own URL only`,
      );
      await refused(createTokenVerifier({ jwksUrl, audience: "tessera", fetch: following, now: clock.now }).verify(await ours.token(clock.ms)), "KEYS_UNAVAILABLE");
    } finally {
      tessera.server.close();
      elsewhere.server.close();
    }
  });

  // The cut at 64 characters of the JSON text never leaves half an escape: it was told by the
  // character before a trailing backslash, so an escaped backslash (\\) followed by the first
  // character of another escape kept that lone backslash, and a backslash's escape followed by a
  // plain "u1" lost its second backslash.
  it("a quoted value cut next to an escaped backslash keeps whole escapes only", async () => {
    const clock = new TestClock();
    const segment = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");
    const cases: Array<[alg: string, shown: string, length: number]> = [
      [`${"A".repeat(60)}\\\n${"B".repeat(100)}`, `"${"A".repeat(60)}\\\\`, 166],
      [`${"A".repeat(59)}\\u12${"B".repeat(100)}`, `"${"A".repeat(59)}\\\\u1`, 166],
    ];
    for (const [alg, shown, length] of cases) {
      const token = `${segment({ alg, kid: "k" })}.${segment({ sub: "u" })}.AAAA`;
      await refused(verifier(keySet({ keys: [] }), clock).verify(token), "UNSUPPORTED_ALGORITHM", `the token's algorithm (${shown}... (${length} characters)) is not accepted`);
    }
  });
});
