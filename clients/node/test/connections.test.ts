// A transport's connections to a real Tessera: closed by its close() (calls in flight finish,
// later calls fail unsent, no connection left), and a side-effect-free call sent once more on a
// fresh connection when its connection failed before any byte of the answer came.
import assert from "node:assert/strict";
import net, { type AddressInfo } from "node:net";
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { ApiTokenService, bearer, clientId, createTesseraClient, createTesseraTransport, KeyService, SessionService, type TesseraTransport } from "../src/index.js";
import { password, rejection, requestsRead, startTestServer, testAdminToken, testCallHeader, testClientId, variants as httpVariants, type TestServer, type Variant } from "./support.js";
import { signUp, uniqueEmail, uniqueName } from "../../../test/support/users.js";
import { heldArgon2 } from "../../../test/support/held-argon2.js";
import { freePort } from "../../../test/support/net.js";

const variants: Array<[string, Variant]> = [...httpVariants, ["gRPC-Web over HTTP/2", { protocol: "grpc-web" }]];

/** How a connection is cut once its client has sent a request, nothing of it passed on. */
type Cut = "reset" | "GOAWAY(INTERNAL_ERROR, last stream 0)";

const h2Preface = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

/**
 * A TCP proxy in front of Tessera (listening on 127.0.0.1:`port`, any port by default) that counts
 * the connections it has open, and cuts the next `cuts` connections as soon as their client sends
 * a request (HTTP/1.1: its first bytes; HTTP/2: a HEADERS frame after the preface), before any
 * byte of an answer: the request is not passed on.
 */
async function cuttingProxy(target: string, port = 0) {
  const { hostname, port: targetPort } = new URL(target);
  const state = { accepted: 0, open: 0, cuts: [] as Cut[] };
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    state.accepted++;
    state.open++;
    client.once("close", () => state.open--);
    const upstream = net.connect(Number(targetPort), hostname);
    for (const socket of [client, upstream]) sockets.add(socket.once("close", () => sockets.delete(socket)));
    const cut = state.cuts.shift();
    let serverSpoke: () => void;
    const spoke = new Promise<void>((r) => (serverSpoke = r));
    let seen = Buffer.alloc(0);
    let cutting = false;
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    upstream.on("data", (chunk: Buffer) => {
      client.write(chunk);
      serverSpoke();
    });
    client.on("data", (chunk: Buffer) => {
      if (cutting) return;
      if (cut === undefined) return void upstream.write(chunk);
      const forwarded = seen.length;
      seen = Buffer.concat([seen, chunk]);
      const at = requestAt(seen);
      if (at === undefined) return void upstream.write(chunk);
      // What came before the request (the preface, SETTINGS) goes on: the server answers it.
      if (at > forwarded) upstream.write(seen.subarray(forwarded, at));
      cutting = true;
      if (cut === "reset") return void (client.resetAndDestroy(), upstream.destroy());
      void spoke.then(() => {
        const goaway = Buffer.alloc(17);
        goaway.writeUIntBE(8, 0, 3);
        goaway[3] = 0x7;
        goaway.writeUInt32BE(0, 9);
        goaway.writeUInt32BE(0x2, 13);
        upstream.destroy();
        client.end(goaway);
      });
    });
    client.on("error", end);
    upstream.on("error", end).on("close", () => client.end());
  });
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    state,
    /** Resolves once the proxy has no connection open (at most 2 s). */
    async drained(): Promise<number> {
      for (const started = performance.now(); state.open > 0 && performance.now() - started < 2000; ) await new Promise((r) => setTimeout(r, 10));
      return state.open;
    },
    /** Stops listening and cuts what is still open. */
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      }),
  };
}

/** Where the first request begins in what a client sent: 0 for HTTP/1.1, the first HEADERS frame for HTTP/2; undefined: not yet. */
function requestAt(sent: Buffer): number | undefined {
  if (sent.length < h2Preface.length) return h2Preface.subarray(0, sent.length).equals(sent) ? undefined : 0;
  if (!sent.subarray(0, h2Preface.length).equals(h2Preface)) return 0;
  for (let at = h2Preface.length; at + 9 <= sent.length; at += 9 + sent.readUIntBE(at, 3)) {
    if (sent[at + 3] === 0x1) return at;
  }
  return undefined;
}

describe("@tessera/client: a transport's connections", () => {
  let server: TestServer;
  before(async () => (server = await startTestServer()));
  after(() => server.close());

  for (const [name, variant] of variants) {
    // A service that shuts down must be able to end its connections; grpc-js's channel.close()
    // and grpc-go's ClientConn.Close() let the calls under way finish, and refuse new ones
    // (grpc-go: CANCELED, "the client connection is closing").
    it(`over ${name}: close() lets a call in flight finish, then ends the transport's connections; a call made after it fails CANCELED, unsent`, async () => {
      const proxy = await cuttingProxy(server.url);
      const held = heldArgon2("verify");
      try {
        const email = uniqueEmail();
        await signUp(server, email);
        const transport = createTesseraTransport({ baseUrl: proxy.url, ...variant, credentials: clientId(testClientId) });
        const keys = createTesseraClient(KeyService, transport);
        assert.ok((await keys.getJwks({})).keys.length > 0);
        const login = createTesseraClient(SessionService, transport).createSession({ accountType: "traditional", email, password });
        await held.started();
        const closed = transport.close();
        let after: ConnectError | undefined;
        const read = await requestsRead(async () => {
          after = await rejection(keys.getJwks({}, { headers: { [testCallHeader]: "after close()" } }));
        });
        held.release();
        assert.equal((await login).accessTokenExpiresIn, 900, "the call in flight at close() is answered");
        await closed;
        assert.deepEqual(
          [Code[after!.code], after!.rawMessage, [...read.keys()], await proxy.drained()],
          ["Canceled", "the transport was closed (close()): it makes no more calls", [], 0],
        );
        // Closing again does nothing more.
        await transport.close();
      } finally {
        held.restore();
        await proxy.close();
      }
    });

    // Made from options, a client had a transport of its own that nothing could close: the
    // process was kept alive by it, its connection held until the server's idle timeout.
    it(`over ${name}: a client made from transport options closes its own transport with close(); a call made after it fails CANCELED, unsent`, async () => {
      const proxy = await cuttingProxy(server.url);
      try {
        const keys = createTesseraClient(KeyService, { baseUrl: proxy.url, ...variant, credentials: clientId(testClientId) });
        assert.ok((await keys.getJwks({})).keys.length > 0);
        assert.equal(proxy.state.open, 1);
        await keys.close();
        let after: ConnectError | undefined;
        const read = await requestsRead(async () => {
          after = await rejection(keys.getJwks({}, { headers: { [testCallHeader]: "after close()" } }));
        });
        assert.deepEqual(
          [Code[after!.code], after!.rawMessage, [...read.keys()], await proxy.drained()],
          ["Canceled", "the transport was closed (close()): it makes no more calls", [], 0],
        );
        // close() is no RPC: the client's keys are its service's methods, as connect-es's are.
        assert.deepEqual(Object.keys(keys), KeyService.methods.map((m) => m.localName));
      } finally {
        await proxy.close();
      }
    });

    // RFC 9110 9.2.2: a request whose method has no side effects may be sent again after a
    // connection failure; one that has side effects (a login, a token created) may have been
    // processed, and is not.
    it(`over ${name}: a side-effect-free call (KeyService.GetJwks) whose connection is reset before any byte of the answer is sent once more on a fresh connection and answered; ApiTokenService.CreateToken fails UNAVAILABLE, sent once`, async () => {
      const proxy = await cuttingProxy(server.url);
      try {
        let attempts = 0;
        const counted: Interceptor = (next) => (req) => (attempts++, next(req));
        // A transport of its own for each call: the next connection is cut.
        const transports: TesseraTransport[] = [];
        const transport = () => transports[transports.push(createTesseraTransport({ baseUrl: proxy.url, ...variant, interceptors: [counted] })) - 1]!;
        proxy.state.cuts.push("reset");
        assert.ok((await createTesseraClient(KeyService, transport()).getJwks({})).keys.length > 0);
        const idempotent = [attempts, proxy.state.accepted];
        attempts = 0;
        proxy.state.cuts.push("reset");
        const err = await rejection(createTesseraClient(ApiTokenService, transport()).createToken({ accountId: "a", description: "d" }, { headers: bearer(testAdminToken) }));
        assert.deepEqual(
          [idempotent, [Code[err.code], err.rawMessage, attempts, proxy.state.accepted]],
          [[2, 2], ["Unavailable", "the connection to the server was lost before the call was answered", 1, 3]],
        );
        await Promise.all(transports.map((t) => t.close()));
      } finally {
        await proxy.close();
      }
    });

    // A connection refused carried nothing of the call (connectionRefused): it is tried once
    // more whatever its method, as a call that never left. Node and libraries give errors causes,
    // and an interceptor may too: a chain that loops back to the error a call failed with is read
    // once through, the call answered as it would be without the loop, not held for ever with the
    // process spinning. By name, the host has two addresses, each refusing: Node's error is an
    // AggregateError without a message, and the call failed UNAVAILABLE saying nothing ("").
    for (const byName of [false, true]) {
      it(`over ${name}: a call whose connection is refused${byName ? " at every address of its host" : ""} is tried once more, whatever its method (GetJwks, side-effect-free, as CreateToken), then fails UNAVAILABLE saying so; so too when the refusal's causes loop back to it`, async () => {
        const port = await freePort();
        const baseUrl = `http://${byName ? "tessera.test" : "127.0.0.1"}:${port}`;
        for (const looped of [false, true]) {
          let attempts = 0;
          const counted: Interceptor = (next) => async (req) => {
            attempts++;
            try {
              return await next(req);
            } catch (e) {
              if (looped) {
                // The innermost cause made to point back at the error the call failed with.
                let last = e as Error;
                while (last.cause instanceof Error) last = last.cause;
                last.cause = e;
              }
              throw e;
            }
          };
          const transport = createTesseraTransport({ baseUrl, ...variant, ...(byName && { nodeOptions: { lookup: twoAddresses as never } }), interceptors: [counted] });
          const refused = await rejection(createTesseraClient(KeyService, transport).getJwks({}));
          const idempotent = [Code[refused.code], refused.rawMessage, attempts];
          attempts = 0;
          const err = await rejection(createTesseraClient(ApiTokenService, transport).createToken({ accountId: "a", description: "d" }));
          const refusal = byName ? `connect ECONNREFUSED 127.0.0.1:${port}; connect ECONNREFUSED 127.0.0.2:${port}` : `connect ECONNREFUSED 127.0.0.1:${port}`;
          // Node's error is still a cause (by name, the AggregateError, its code its first member's).
          assert.deepEqual([looped, idempotent, [Code[err.code], err.rawMessage, attempts, nodeCode(err)]], [looped, ["Unavailable", refusal, 2], ["Unavailable", refusal, 2, "ECONNREFUSED"]]);
          await transport.close();
        }
      });
    }

    // A host one of whose addresses refused and another could not be reached (a multicast
    // address, which Linux's TCP connect refuses with ENETUNREACH) is no host refusing, whichever
    // address Node tried first: its AggregateError's own code is only its first member's.
    it(`over ${name}: a call whose host has an address refusing and one unreachable, in either order, is not sent again for the refusal (CreateToken): UNAVAILABLE, one attempt`, async () => {
      const port = await freePort();
      const outcomes: unknown[] = [];
      for (const addresses of [["127.0.0.1", "224.0.0.1"], ["224.0.0.1", "127.0.0.1"]]) {
        let attempts = 0;
        const counted: Interceptor = (next) => (req) => (attempts++, next(req));
        const lookup = (_host: string, options: { all?: boolean }, answer: (...args: unknown[]) => void) => {
          if (options.all === true) answer(null, addresses.map((address) => ({ address, family: 4 })));
          else answer(null, addresses[0], 4);
        };
        const transport = createTesseraTransport({ baseUrl: `http://tessera.test:${port}`, ...variant, nodeOptions: { lookup: lookup as never }, interceptors: [counted] });
        const err = await rejection(createTesseraClient(ApiTokenService, transport).createToken({ accountId: "a", description: "d" }));
        outcomes.push([Code[err.code], attempts, memberCodes(err)]);
        await transport.close();
      }
      assert.deepEqual(outcomes, [
        ["Unavailable", 1, ["ECONNREFUSED", "ENETUNREACH"]],
        ["Unavailable", 1, ["ENETUNREACH", "ECONNREFUSED"]],
      ]);
    });

    // A host name not resolved: nothing of the call left, but the resolver, asked again at once,
    // mostly fails again (EAI_AGAIN comes after its own timeouts and retries; ENOTFOUND is for good).
    it(`over ${name}: a call whose host name is not resolved (EAI_AGAIN, ENOTFOUND) fails UNAVAILABLE with the resolver's message, whatever its method, not sent again`, async () => {
      for (const code of ["EAI_AGAIN", "ENOTFOUND"]) {
        let lookups = 0;
        const lookup = (host: string, _options: unknown, answer: (e: NodeJS.ErrnoException) => void) => {
          lookups++;
          answer(Object.assign(new Error(`getaddrinfo ${code} ${host}`), { code, syscall: "getaddrinfo", hostname: host }));
        };
        const transport = createTesseraTransport({ baseUrl: `http://tessera.test:${await freePort()}`, ...variant, nodeOptions: { lookup: lookup as never } });
        for (const call of [() => createTesseraClient(KeyService, transport).getJwks({}), () => createTesseraClient(ApiTokenService, transport).createToken({ accountId: "a", description: "d" })]) {
          lookups = 0;
          const err = await rejection(call());
          assert.deepEqual([code, Code[err.code], err.rawMessage, lookups], [code, "Unavailable", `getaddrinfo ${code} tessera.test`, 1]);
        }
        await transport.close();
      }
    });

    // A connection that failed otherwise before it was made (no route to the host, a local address
    // that cannot be bound) carried nothing of the call either: gRPC clients report any connection
    // failure UNAVAILABLE; connect-node maps only ECONNREFUSED, ETIMEDOUT and the resolver's codes
    // so, the rest INTERNAL, as it would a fault of the server's.
    it(`over ${name}: a call whose connection could not be made (its local address not this host's: bind EADDRNOTAVAIL) fails UNAVAILABLE with Node's message, whatever its method`, async () => {
      const transport = createTesseraTransport({ baseUrl: `http://127.0.0.1:${await freePort()}`, ...variant, nodeOptions: { localAddress: "203.0.113.77" } as never });
      const failed: unknown[] = [];
      for (const call of [() => createTesseraClient(KeyService, transport).getJwks({}), () => createTesseraClient(ApiTokenService, transport).createToken({ accountId: "a", description: "d" })]) {
        const err = await rejection(call());
        failed.push([Code[err.code], err.rawMessage, nodeCode(err)]);
      }
      assert.deepEqual(failed, [
        ["Unavailable", "bind EADDRNOTAVAIL 203.0.113.77", "EADDRNOTAVAIL"],
        ["Unavailable", "bind EADDRNOTAVAIL 203.0.113.77", "EADDRNOTAVAIL"],
      ]);
      await transport.close();
    });

    // gRPC's transparent retry (proposal A6): a call that never left the client may be sent again,
    // whatever its method. A connection refused (ECONNREFUSED, from connect) carried nothing of
    // the call; a call with side effects failed UNAVAILABLE, unsent again, all the same. Here
    // Tessera's port comes up as the first attempt fails: the call, sent once more, is processed
    // once. By name, the host has two addresses (Node tries each: an AggregateError of refusals).
    for (const byName of [false, true]) {
      it(`over ${name}: a call whose connection was refused${byName ? " at every address of its host" : ""} never left, and is sent once more on a fresh connection whatever its method: CreateToken, then answered, makes one token`, async () => {
        const port = await freePort();
        let proxy: Awaited<ReturnType<typeof cuttingProxy>> | undefined;
        const failures: unknown[] = [];
        const comesUp: Interceptor = (next) => async (req) => {
          try {
            return await next(req);
          } catch (e) {
            failures.push([Code[ConnectError.from(e).code], nodeCode(e)]);
            proxy ??= await cuttingProxy(server.url, port);
            throw e;
          }
        };
        const transport = createTesseraTransport({
          baseUrl: `http://${byName ? "tessera.test" : "127.0.0.1"}:${port}`,
          ...variant,
          ...(byName && { nodeOptions: { lookup: twoAddresses as never } }),
          credentials: bearer(testAdminToken),
          interceptors: [comesUp],
        });
        try {
          const tokens = createTesseraClient(ApiTokenService, transport);
          const accountId = uniqueName("acct");
          const outcome = await tokens.createToken({ accountId, description: "d" }, { timeoutMs: 10_000 }).then(
            (r) => (r.token !== "" ? "answered" : "no token"),
            (e: unknown) => [Code[ConnectError.from(e).code], ConnectError.from(e).rawMessage],
          );
          const accepted = proxy?.state.accepted;
          const listed = (await tokens.listTokens({ accountId }, { timeoutMs: 10_000 })).tokens.length;
          assert.deepEqual([outcome, failures, accepted, listed], ["answered", [["Unavailable", "ECONNREFUSED"]], 1, 1]);
        } finally {
          await transport.close();
          await proxy?.close();
        }
      });
    }

    // A chain of causes that loops (an error its own cause, a → b → a) or never ends (a cause
    // made anew each time it is read) is read so far only.
    it(`over ${name}: an interceptor's error whose causes loop (itself; a → b → a) or never end fails the call UNKNOWN, its message and the error kept, as any error an interceptor throws`, async () => {
      const baseUrl = `http://127.0.0.1:${await freePort()}`;
      const self = new Error("the interceptor's own failure");
      self.cause = self;
      const a = new Error("a, caused by b");
      a.cause = new Error("b, caused by a", { cause: a });
      const endless = (n: number): Error => Object.defineProperty(new Error(`cause ${n}`), "cause", { get: () => endless(n + 1) });
      for (const thrown of [self, a, endless(0)]) {
        const throwing: Interceptor = () => () => Promise.reject(thrown);
        const transport = createTesseraTransport({ baseUrl, ...variant, interceptors: [throwing] });
        const calls = [createTesseraClient(KeyService, transport).getJwks({}), createTesseraClient(ApiTokenService, transport).createToken({ accountId: "a", description: "d" })];
        for (const err of await Promise.all(calls.map(rejection))) {
          assert.deepEqual([Code[err.code], err.rawMessage, err.cause === thrown], ["Unknown", thrown.message, true]);
        }
        await transport.close();
      }
    });

    if (variant.httpVersion === "1.1") continue;
    it(`over ${name}: a side-effect-free call whose connection ends with a GOAWAY naming an error, its stream above the last stream processed, is sent once more on a fresh connection and answered`, async () => {
      const proxy = await cuttingProxy(server.url);
      try {
        let attempts = 0;
        const counted: Interceptor = (next) => (req) => (attempts++, next(req));
        const transport = createTesseraTransport({ baseUrl: proxy.url, ...variant, interceptors: [counted] });
        proxy.state.cuts.push("GOAWAY(INTERNAL_ERROR, last stream 0)");
        assert.ok((await createTesseraClient(KeyService, transport).getJwks({})).keys.length > 0);
        assert.deepEqual([attempts, proxy.state.accepted], [2, 2]);
        await transport.close();
      } finally {
        await proxy.close();
      }
    });

    // Node closes an HTTP/2 connection gracefully: once its streams are done it ends its side
    // and waits for the server to end its own. A server that never does (its process hung, or the
    // connection died silently while idle) held close(), and a service's shutdown, for ever (or
    // until TCP gave up, minutes later).
    // A createConnection of the caller's own (HTTP/2's nodeOptions) that opens a net.Socket has it cut alike.
    for (const given of [false, true]) {
      it(`over ${name}${given ? ", the connection opened by the caller's own createConnection" : ""}: close() of a transport whose server no longer reads its connection resolves within pingTimeoutMs of its last call's end (its socket cut), not waiting for the server to close it`, async () => {
        const sockets = new Set<net.Socket>();
        const { hostname, port } = new URL(server.url);
        const proxy = net.createServer((client) => {
          const upstream = net.connect(Number(port), hostname);
          for (const socket of [client, upstream]) sockets.add(socket.on("error", () => {}));
          client.pipe(upstream).pipe(client);
        });
        await new Promise<void>((resolve) => proxy.listen(0, "127.0.0.1", resolve));
        try {
          const createConnection = (authority: URL) => net.connect(Number(authority.port), authority.hostname);
          const transport = createTesseraTransport({ baseUrl: `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`, ...variant, ...(given && { nodeOptions: { createConnection } }), pingTimeoutMs: 300 });
          assert.ok((await createTesseraClient(KeyService, transport).getJwks({})).keys.length > 0);
          // The server hangs: nothing it is sent is read, nothing is answered or closed.
          for (const socket of sockets) socket.unpipe().pause();
          const start = performance.now();
          const closed = await Promise.race([transport.close().then(() => "closed"), new Promise<string>((r) => setTimeout(() => r("close() still waiting after 2 s"), 2000).unref())]);
          const waited = performance.now() - start;
          assert.equal(closed, "closed");
          assert.ok(waited < 300 + 500, `closed after ${waited} ms`);
        } finally {
          proxy.close();
          for (const socket of sockets) socket.destroy();
        }
      });
    }
  }

  it("a client over a transport it was given has no close(): the transport's owner closes it", async () => {
    const transport = createTesseraTransport({ baseUrl: server.url, protocol: "grpc" });
    try {
      const keys = createTesseraClient(KeyService, transport);
      // @ts-expect-error: no close() on a client whose transport is shared.
      assert.equal(keys.close, undefined);
    } finally {
      await transport.close();
    }
  });

  it("a service with a method named close is refused a transport of its own (close() would hide the RPC)", () => {
    const withClose = { ...KeyService, methods: [...KeyService.methods, { ...KeyService.methods[0]!, localName: "close" }] } as typeof KeyService;
    assert.throws(() => createTesseraClient(withClose, { baseUrl: server.url, protocol: "grpc" }), {
      name: "TypeError",
      message: "tessera.key.v1.KeyService has a method named close: make its transport with createTesseraTransport, and close that",
    });
  });
});

/** A `lookup` (node:net's) by which any host name has two addresses, 127.0.0.1 then 127.0.0.2: Node tries each. */
function twoAddresses(_host: string, options: { all?: boolean }, answer: (...args: unknown[]) => void): void {
  if (options.all === true) answer(null, [{ address: "127.0.0.1", family: 4 }, { address: "127.0.0.2", family: 4 }]);
  else answer(null, "127.0.0.1", 4);
}

/** The Node error code (ECONNREFUSED...) of the first error in `e`'s chain of causes that has one. */
function nodeCode(e: unknown): string | undefined {
  for (let c: unknown = e, n = 0; c instanceof Error && n < 10; c = c.cause, n++) {
    const code = (c as NodeJS.ErrnoException).code;
    if (typeof code === "string") return code;
  }
  return undefined;
}

/** The Node error codes of the members of the first AggregateError in `e`'s chain of causes (Node's failure at every address of a host). */
function memberCodes(e: unknown): unknown[] | undefined {
  for (let c: unknown = e, n = 0; c instanceof Error && n < 10; c = c.cause, n++) {
    if (c instanceof AggregateError) return (c.errors as unknown[]).map((m) => (m as NodeJS.ErrnoException).code);
  }
  return undefined;
}
