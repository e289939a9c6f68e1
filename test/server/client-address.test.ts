// The client address that login protection counts: the connection's peer on every transport
// (HTTP/1.1, h2c, TLS with HTTP/1.1 and h2), or — only when that peer is one of
// TESSERA_TRUSTED_PROXIES — the right-most hop of X-Forwarded-For (else Forwarded) that is not a
// trusted proxy; an IPv6 address counts as its /64. Seen through the documented lockout: with
// TESSERA_LOGIN_MAX_FAILURES=1 an address is locked after 4 failed logins (429 /
// RESOURCE_EXHAUSTED), and other addresses are not. The clients bind distinct loopback
// addresses (127.0.0.x) to be distinct peers.
import { strict as assert } from "node:assert";
import http from "node:http";
import https from "node:https";
import net from "node:net";
import tls from "node:tls";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { SessionService } from "../../gen/tessera/session/v1/session_pb.js";
import fc from "fast-check";
import { formatIPv6 } from "../../src/core/ip-prefix.js";
import { counted, createClientAddressResolver, nat64Prefix, nat64WellKnown } from "../../src/server/client-address.js";
import { makeTestCertificate, type TestCertificate } from "../support/net.js";
import { startTestServer, type TestServer } from "../support/server.js";
import { clientIdHeader, otherPassword, uniqueEmail } from "../support/users.js";

type Outcome = "unauthenticated" | "resource_exhausted" | string;

interface Via {
  name: string;
  login(from: string, email: string, headers?: Record<string, string>): Promise<Outcome>;
}

/** A login nobody has: each one fails once (and is then locked itself: max failures 1). */
const ghost = () => uniqueEmail("ghost");

function restVia(name: string, url: string, ca?: Buffer): Via {
  return {
    name,
    login: (from, email, headers = {}) =>
      new Promise((resolve, reject) => {
        const body = JSON.stringify({ account_type: "traditional", email, password: otherPassword });
        const u = new URL("/session", url);
        const options = {
          method: "POST",
          localAddress: from,
          agent: false as const,
          ca,
          headers: { "content-type": "application/json", "content-length": String(Buffer.byteLength(body)), ...clientIdHeader, ...headers },
        };
        const req = (u.protocol === "https:" ? https : http).request(u, options, (res) => {
          res.resume();
          res.on("end", () => resolve(res.statusCode === 401 ? "unauthenticated" : res.statusCode === 429 ? "resource_exhausted" : String(res.statusCode)));
        });
        req.on("error", reject);
        req.end(body);
      }),
  };
}

function grpcVia(name: string, url: string, ca?: Buffer): Via {
  return {
    name,
    async login(from, email, headers = {}) {
      // The session's connection, made from `from`.
      const createConnection = (authority: URL) => {
        const socket = net.connect({ host: authority.hostname, port: Number(authority.port), localAddress: from });
        return ca ? tls.connect({ socket, host: authority.hostname, ca, ALPNProtocols: ["h2"] }) : socket;
      };
      const client = createClient(SessionService, createGrpcTransport({ baseUrl: url, nodeOptions: { createConnection } }));
      try {
        await client.createSession({ accountType: "traditional", email, password: otherPassword }, { headers: { ...clientIdHeader, ...headers } });
        return "ok";
      } catch (e) {
        const code = ConnectError.from(e).code;
        return code === Code.Unauthenticated ? "unauthenticated" : code === Code.ResourceExhausted ? "resource_exhausted" : Code[code];
      }
    },
  };
}

/** Four failures from `locked`'s point of view lock it; `other` is still free. */
async function lockOut(via: Via, locked: { from: string; headers?: Record<string, string> }, other: { from: string; headers?: Record<string, string> }): Promise<void> {
  for (let i = 0; i < 4; i++) {
    assert.equal(await via.login(locked.from, ghost(), locked.headers), "unauthenticated", `${via.name}: failure ${i + 1}`);
  }
  assert.equal(await via.login(locked.from, ghost(), locked.headers), "resource_exhausted", `${via.name}: the address is locked after 4 failures`);
  assert.equal(await via.login(other.from, ghost(), other.headers), "unauthenticated", `${via.name}: another address is not locked`);
}

describe("client address", function () {
  this.timeout(60_000);
  const env = { TESSERA_LOGIN_MAX_FAILURES: "1", TESSERA_TRUSTED_PROXIES: "127.0.0.9" };
  let plain: TestServer;
  let secure: TestServer;
  let cert: TestCertificate;

  before(async () => {
    cert = makeTestCertificate();
    plain = await startTestServer({ env });
    secure = await startTestServer({ env: { ...env, ...cert.env } });
  });
  after(async () => {
    await plain?.close();
    await secure?.close();
    cert?.remove();
  });

  it("is the connection's peer on every transport: HTTP/1.1, h2c, TLS HTTP/1.1, TLS h2", async () => {
    const vias: Array<[Via, string, string]> = [
      [restVia("HTTP/1.1", plain.url), "127.0.0.2", "127.0.0.3"],
      [grpcVia("h2c (gRPC)", plain.url), "127.0.0.4", "127.0.0.5"],
      [restVia("TLS HTTP/1.1", secure.url, cert.ca), "127.0.0.2", "127.0.0.3"],
      [grpcVia("TLS h2 (gRPC)", secure.url, cert.ca), "127.0.0.4", "127.0.0.5"],
    ];
    for (const [via, locked, other] of vias) await lockOut(via, { from: locked }, { from: other });
  });

  describe("behind a trusted proxy (127.0.0.9)", () => {
    it("X-Forwarded-For over HTTP/1.1: the right-most untrusted hop is counted, not the proxy", async () => {
      const via = restVia("HTTP/1.1", plain.url);
      await lockOut(
        via,
        { from: "127.0.0.9", headers: { "x-forwarded-for": "203.0.113.50, 198.51.100.7" } },
        { from: "127.0.0.9", headers: { "x-forwarded-for": "198.51.100.8" } },
      );
      // What the client wrote left of the proxy's entry changes nothing: still 198.51.100.7.
      assert.equal(await via.login("127.0.0.9", ghost(), { "x-forwarded-for": "10.9.9.9, 198.51.100.7" }), "resource_exhausted");
    });

    it("a peer that is no trusted proxy is counted itself, whatever X-Forwarded-For says", async () => {
      const via = restVia("HTTP/1.1", plain.url);
      await lockOut(via, { from: "127.0.0.10", headers: { "x-forwarded-for": "198.51.100.20" } }, { from: "127.0.0.11", headers: { "x-forwarded-for": "198.51.100.20" } });
    });

    it("Forwarded over h2c (gRPC metadata): an IPv6 client counts as its /64", async () => {
      const via = grpcVia("h2c (gRPC)", plain.url);
      await lockOut(
        via,
        { from: "127.0.0.9", headers: { forwarded: 'for="[2001:db8:1:2::1]:4711";proto=https' } },
        { from: "127.0.0.9", headers: { forwarded: 'for="[2001:db8:1:3::1]"' } },
      );
      assert.equal(await via.login("127.0.0.9", ghost(), { forwarded: 'for="[2001:db8:1:2:ffff::9]"' }), "resource_exhausted", "the same /64");
    });

    // RFC 7239's host= is the Host its client sent, written as a quoted-string: a Host that ends
    // in a backslash is `host="x\\"` (RFC 9110 5.6.4's quoted-pair). The quote after that pair
    // closes the string; taken for an escaped one, the string ran on to the left, over the comma
    // before the proxy's element, and a for= the client wrote there was counted.
    it("Forwarded: the proxy's element quoting a value that ends in an escaped backslash (host=\"x\\\\\"): its hop is counted, not a for= the client wrote", async () => {
      const via = restVia("HTTP/1.1", plain.url);
      const proxied = (written: string) => ({ forwarded: `${written}, for=198.51.100.41;host="x\\\\"` });
      for (let i = 0; i < 4; i++) {
        assert.equal(await via.login("127.0.0.9", ghost(), proxied(`for=192.0.2.${i + 1};by=_p`)), "unauthenticated", `failure ${i + 1}`);
      }
      assert.equal(await via.login("127.0.0.9", ghost(), proxied("for=192.0.2.99;by=_p")), "resource_exhausted", "198.51.100.41 is locked after 4 failures, whatever for= its client wrote");
    });
  });

  // A dual-stack listener (::) reports an IPv4 peer as ::ffff:a.b.c.d, one listening on 127.0.0.1
  // as a.b.c.d: two instances sharing one database, one of each, count one IPv4 client (and one
  // trusted proxy's hop) in one window, however each reports it.
  describe("an IPv4 listener and a dual-stack one (::) sharing one database", () => {
    let dual: TestServer;
    before(async () => (dual = await startTestServer({ env: { ...env, HOST: "::", TESSERA_DATA_DIR: plain.config.dataDir } })));
    after(() => dual?.close());

    it("count an IPv4 client as one address: failures through either lock it on both, over HTTP/1.1 and gRPC; a trusted proxy's hop too", async () => {
      const dualUrl = `http://127.0.0.1:${dual.port}`;
      const pairs: Array<[Via, Via, string, Record<string, string>]> = [
        [restVia("HTTP/1.1", plain.url), restVia("HTTP/1.1, dual-stack", dualUrl), "127.0.0.14", {}],
        [grpcVia("h2c (gRPC)", plain.url), grpcVia("h2c (gRPC), dual-stack", dualUrl), "127.0.0.15", {}],
        [restVia("HTTP/1.1", plain.url), restVia("HTTP/1.1, dual-stack", dualUrl), "127.0.0.9", { "x-forwarded-for": "198.51.100.77" }],
      ];
      for (const [v4, v6, from, headers] of pairs) {
        for (let i = 0; i < 4; i++) {
          const via = i % 2 === 0 ? v4 : v6;
          assert.equal(await via.login(from, ghost(), headers), "unauthenticated", `${via.name} from ${from}: failure ${i + 1}`);
        }
        for (const via of [v4, v6]) assert.equal(await via.login(from, ghost(), headers), "resource_exhausted", `${via.name} from ${from}: locked after 4 failures over both listeners`);
      }
    });
  });

  // ::1/64 is ::/64, which holds every IPv4-mapped address (::ffff:0:0/96): an IPv6 entry trusts
  // IPv6 peers only, else every IPv4 client could name a fresh address of its own each time.
  describe("an IPv6 entry whose subnet holds the IPv4-mapped addresses (::1/64)", () => {
    let v6only: TestServer;
    before(async () => (v6only = await startTestServer({ env: { TESSERA_LOGIN_MAX_FAILURES: "1", TESSERA_TRUSTED_PROXIES: "::1/64" } })));
    after(() => v6only?.close());

    it("trusts no IPv4 peer: one naming a fresh address in X-Forwarded-For at each attempt is counted itself, over HTTP/1.1 and gRPC", async () => {
      const vias: Array<[Via, string]> = [
        [restVia("HTTP/1.1", v6only.url), "127.0.0.12"],
        [grpcVia("h2c (gRPC)", v6only.url), "127.0.0.13"],
      ];
      for (const [via, from] of vias) {
        const naming = (i: number) => ({ "x-forwarded-for": `198.51.100.${100 + i}` });
        for (let i = 0; i < 4; i++) assert.equal(await via.login(from, ghost(), naming(i)), "unauthenticated", `${via.name}: failure ${i + 1}`);
        assert.equal(await via.login(from, ghost(), naming(4)), "resource_exhausted", `${via.name}: ${from} is locked after 4 failures, whatever address it names`);
      }
    });
  });
});

describe("client address resolution", () => {
  it("the NAT64 well-known prefix, written out, is 64:ff9b::/96 as parsed", () => {
    assert.deepEqual(nat64WellKnown, nat64Prefix("64:ff9b::/96"));
  });

  const resolve = createClientAddressResolver(["10.0.0.0/8", "2001:db8:ffff::/48", "192.0.2.1"]);
  const cases: Array<[string, string | undefined, Record<string, string>, string]> = [
    ["untrusted peer: itself, the header ignored", "203.0.113.9", { "x-forwarded-for": "198.51.100.1" }, "203.0.113.9"],
    ["IPv4-mapped IPv6 peer: its IPv4 address", "::ffff:203.0.113.9", {}, "203.0.113.9"],
    ["IPv6 peer: its /64", "2001:DB8:AA:BB:1:2:3:4", {}, "2001:db8:aa:bb::/64"],
    // RFC 6052's well-known prefix: a translator's or proxy's way to present an IPv4 client.
    ["NAT64 peer (64:ff9b::/96): the IPv4 address it embeds", "64:ff9b::c000:201", {}, "192.0.2.1"],
    ["NAT64 hop, dotted: the IPv4 address it embeds", "10.1.1.1", { "x-forwarded-for": "64:FF9B::198.51.100.1" }, "198.51.100.1"],
    ["NAT64 hop in Forwarded, with a port", "10.1.1.1", { forwarded: 'for="[64:ff9b::cb00:7107]:443"' }, "203.0.113.7"],
    ["64:ff9b::/96's neighbour 64:ff9b:0:0:1::/80: its /64", "64:ff9b::1:0:c000:201", {}, "64:ff9b::/64"],
    // Trust is judged on the address as seen: the IPv4 entry 192.0.2.1 does not list 64:ff9b::c000:201.
    ["NAT64 peer whose embedded address is a listed proxy: counted itself, the header ignored", "64:ff9b::c000:201", { "x-forwarded-for": "198.51.100.1" }, "192.0.2.1"],
    ["the local-use 64:ff9b:1::/48 (RFC 8215; its prefix length is the operator's), unlisted: its /64", "64:ff9b:1::c000:201", {}, "64:ff9b:1::/64"],
    // RFC 4380: 2001:0:<server IPv4>:<flags>:<port>:<client IPv4>, the last two with every bit inverted.
    ["Teredo peer (2001::/32): the client's IPv4 address, not its server's /64", "2001:0:4136:e378:8000:63bf:3fff:fdd2", {}, "192.0.2.45"],
    ["Teredo hop in Forwarded, with a port", "10.1.1.1", { forwarded: 'for="[2001:0:4136:E378:8000:63BF:3FFF:FDD2]:443"' }, "192.0.2.45"],
    // Trust is judged on the address as seen: the entry 10.0.0.0/8 does not list a Teredo peer whose client is 10.0.0.1.
    ["Teredo peer whose client is a private address, a listed proxy's: that address, the header ignored", "2001:0:4136:e378:8000:63bf:f5ff:fffe", { "x-forwarded-for": "198.51.100.1" }, "10.0.0.1"],
    ["Teredo peer whose client is the loopback address: that address", "2001:0:4136:e378:8000:63bf:80ff:fffe", {}, "127.0.0.1"],
    ["2001:db8::/32, Teredo's neighbour: its /64", "2001:db8:4136:e378:8000:63bf:3fff:fdd2", {}, "2001:db8:4136:e378::/64"],
    ["2001:1::/32, Teredo's neighbour: its /64", "2001:1:4136:e378:8000:63bf:3fff:fdd2", {}, "2001:1:4136:e378::/64"],
    // A 6to4 address (2002::/16) counts as an IPv6 one: its /48 (in its windows too) is its site's one IPv4 address.
    ["6to4 peer: its /64", "2002:c000:22d:1::1", {}, "2002:c000:22d:1::/64"],
    ["trusted peer, no header: the proxy", "10.1.1.1", {}, "10.1.1.1"],
    ["trusted peer: the right-most untrusted hop", "10.1.1.1", { "x-forwarded-for": "198.51.100.1, 203.0.113.7, 10.2.2.2" }, "203.0.113.7"],
    ["every hop trusted: the left-most", "10.1.1.1", { "x-forwarded-for": "10.3.3.3, 10.2.2.2" }, "10.3.3.3"],
    ["a hop that is no address stops at the proxy that wrote it", "10.1.1.1", { "x-forwarded-for": "198.51.100.1, unknown" }, "10.1.1.1"],
    ["IPv4 with a port", "10.1.1.1", { "x-forwarded-for": "198.51.100.1:5555" }, "198.51.100.1"],
    ["X-Forwarded-For wins over Forwarded", "10.1.1.1", { "x-forwarded-for": "198.51.100.1", forwarded: "for=198.51.100.2" }, "198.51.100.1"],
    ["Forwarded: quoted IPv6 with a port, as its /64", "192.0.2.1", { forwarded: 'for=198.51.100.2;by=x, for="[2001:db8:1:2::5]:443"' }, "2001:db8:1:2::/64"],
    ["Forwarded: an obfuscated hop stops at the proxy", "192.0.2.1", { forwarded: "for=198.51.100.2, for=_hidden" }, "192.0.2.1"],
    ["Forwarded: FOR in upper case, a trusted IPv6 hop skipped", "10.1.1.1", { forwarded: 'FOR=198.51.100.3, for="[2001:db8:ffff::1]"' }, "198.51.100.3"],
    // A proxy's element without for= does not say who its client was: what lies left of it is the client's writing.
    ["Forwarded: the proxy's element names no for=: stops at the proxy", "192.0.2.1", { forwarded: "for=198.51.100.66, proto=https;host=auth.example" }, "192.0.2.1"],
    ["no peer at all", undefined, {}, "unknown"],
    // The client writes what is left of the proxy's hop: a quote it leaves open does not swallow that hop.
    ["Forwarded: a quote the client left open, then the proxy's hop", "10.1.1.1", { forwarded: 'for="198.51.100.1, for=203.0.113.7' }, "203.0.113.7"],
    ["Forwarded: a quote the client left open, then the proxy's quoted IPv6 hop", "10.1.1.1", { forwarded: 'for="x, for="[2001:db8:1:2::1]:443"' }, "2001:db8:1:2::/64"],
    // A quoted-string's quoted-pairs (RFC 9110 5.6.4): `\\` is a backslash, `\"` a quote in it.
    ["Forwarded: the proxy's quoted value ends in an escaped backslash: its hop, not the client's for=", "10.1.1.1", { forwarded: 'for=198.51.100.1;by=_p, for=203.0.113.7;host="x\\\\"' }, "203.0.113.7"],
    ["Forwarded: the proxy's quoted value ends in a backslash it did not escape: its hop", "10.1.1.1", { forwarded: 'for=198.51.100.1;by=_p, for=203.0.113.7;host="x\\"' }, "203.0.113.7"],
    ["Forwarded: for= after a quoted value that ends in an escaped backslash", "10.1.1.1", { forwarded: 'for=198.51.100.1, host="x\\\\";for=203.0.113.7' }, "203.0.113.7"],
    ["Forwarded: two escaped backslashes, then the quoted IPv6 hop", "10.1.1.1", { forwarded: 'for=198.51.100.1, for="[2001:db8:1:2::1]";host="\\\\\\\\"' }, "2001:db8:1:2::/64"],
    ["Forwarded: an escaped quote and a comma in the proxy's quoted value", "10.1.1.1", { forwarded: 'for=198.51.100.1, for=203.0.113.7;host="a\\",b"' }, "203.0.113.7"],
    // At most 32 hops are read, from the right: a longer chain of trusted hops counts as its 32nd.
    ["a chain of 40 trusted hops: the 32nd from the right", "10.1.1.1", { "x-forwarded-for": Array.from({ length: 40 }, (_, i) => `10.0.0.${40 - i}`).join(", ") }, "10.0.0.32"],
    ["Forwarded: a chain of 40 trusted hops: the 32nd from the right", "10.1.1.1", { forwarded: Array.from({ length: 40 }, (_, i) => `for=10.0.0.${40 - i}`).join(", ") }, "10.0.0.32"],
    ["32 trusted hops: the left-most", "10.1.1.1", { "x-forwarded-for": Array.from({ length: 32 }, (_, i) => `10.0.0.${32 - i}`).join(", ") }, "10.0.0.32"],
    ["a long header of garbage left of the proxy's hop: that hop", "10.1.1.1", { "x-forwarded-for": `${",".repeat(15_000)} 203.0.113.7` }, "203.0.113.7"],
  ];
  for (const [name, peer, headers, expected] of cases) {
    it(`${name}: ${expected}`, () => assert.equal(resolve(peer, headers), expected));
  }

  it("Forwarded: whatever the client wrote, and whatever a quoted value of the proxy's element holds (escaped), the proxy's hop is counted", () => {
    const quotedString = (text: string) => `"${text.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
    fc.assert(
      fc.property(fc.string({ maxLength: 40 }), fc.string({ maxLength: 20 }), fc.boolean(), (written, host, hostFirst) => {
        const element = hostFirst ? `host=${quotedString(host)};for=203.0.113.7` : `for=203.0.113.7;host=${quotedString(host)}`;
        assert.equal(resolve("10.1.1.1", { forwarded: `${written}, ${element}` }), "203.0.113.7");
      }),
      { numRuns: 2000 },
    );
  });

  // Every way one client's address may be written (as a peer or a proxy's hop) is one address to
  // count: an attacker who could write it another way would get a fresh window each time.
  const octet = fc.integer({ min: 0, max: 255 });
  const group = fc.integer({ min: 0, max: 0xffff });
  const zone = fc.constantFrom("", "%eth0", "%1", "%lo");
  /** One group written in either case, with or without leading zeros. */
  const spelled = (g: number, upper: boolean, padded: boolean) => {
    const hex = padded ? g.toString(16).padStart(4, "0") : g.toString(16);
    return upper ? hex.toUpperCase() : hex;
  };

  it("counts every spelling of an IPv4 client as its address: plain, IPv4-mapped (dotted or hex, either case, written out), with a zone id; as a peer and as a hop, with a port", () => {
    const withProxy = createClientAddressResolver(["10.0.0.0/8"]);
    const withoutProxy = createClientAddressResolver([]);
    fc.assert(
      fc.property(fc.tuple(octet, octet, octet, octet), fc.boolean(), fc.boolean(), zone, (q, upper, padded, z) => {
        const ipv4 = q.join(".");
        const [hi, lo] = [(q[0] << 8) | q[1], (q[2] << 8) | q[3]];
        const ffff = upper ? "FFFF" : "ffff";
        const spellings = [
          ipv4,
          `::${ffff}:${ipv4}`,
          `::${ffff}:${spelled(hi, upper, padded)}:${spelled(lo, upper, padded)}`,
          `0:0:0:0:0:${ffff}:${ipv4}`,
          `${padded ? "0000:0000:0000:0000:0000" : "0:0:0:0:0"}:${ffff}:${spelled(hi, upper, padded)}:${spelled(lo, upper, padded)}`,
        ];
        for (const spelling of spellings) {
          const peer = spelling.includes(":") ? `${spelling}${z}` : spelling;
          // 10.x addresses are the proxy's: as a peer with the header, they name the hop.
          if (q[0] !== 10) assert.equal(withProxy(peer, { "x-forwarded-for": "198.51.100.1" }), ipv4, `peer ${peer}`);
          assert.equal(withoutProxy(peer, { "x-forwarded-for": "198.51.100.1" }), ipv4, `peer ${peer}, no proxy`);
          const hop = spelling.includes(":") ? `[${peer}]:4711` : `${spelling}:4711`;
          assert.equal(withProxy("10.1.1.1", { "x-forwarded-for": hop }), ipv4, `hop ${hop}`);
          assert.equal(withProxy("10.1.1.1", { forwarded: `for="${hop}"` }), ipv4, `Forwarded hop ${hop}`);
        }
      }),
    );
  });

  it("counts every address of an IPv6 client's /64 as that /64, in either case, with or without leading zeros or a zone id; as a peer and as a hop, with a port", () => {
    const withProxy = createClientAddressResolver(["10.0.0.0/8"]);
    fc.assert(
      fc.property(
        // A global unicast /64 (2000::/3, not Teredo's 2001::/32), any interface id.
        fc.tuple(fc.integer({ min: 0x2002, max: 0x3fff }), group, group, group),
        fc.tuple(group, group, group, group),
        fc.boolean(),
        fc.boolean(),
        zone,
        (prefix, iid, upper, padded, z) => {
          const expected = `${formatIPv6([...prefix, 0, 0, 0, 0])}/64`;
          const address = [...prefix, ...iid].map((g) => spelled(g, upper, padded)).join(":");
          assert.equal(withProxy(`${address}${z}`, {}), expected, `peer ${address}${z}`);
          assert.equal(withProxy(formatIPv6([...prefix, ...iid]), {}), expected);
          assert.equal(withProxy("10.1.1.1", { "x-forwarded-for": `[${address}${z}]:443` }), expected, `hop ${address}${z}`);
          assert.equal(withProxy("10.1.1.1", { forwarded: `for="[${address}${z}]:443"` }), expected);
        },
      ),
    );
  });

  it("with no trusted proxy, counts the peer whatever X-Forwarded-For and Forwarded say", () => {
    const resolve = createClientAddressResolver([]);
    // As node:http types them: X-Forwarded-For a field or several, Forwarded one string.
    const xffFields = fc.oneof(fc.string(), fc.array(fc.string(), { minLength: 1, maxLength: 3 }));
    fc.assert(
      fc.property(xffFields, fc.string(), (xff, forwarded) => {
        assert.equal(resolve("203.0.113.9", { "x-forwarded-for": xff, forwarded }), "203.0.113.9");
        assert.equal(resolve("::ffff:203.0.113.9", { "x-forwarded-for": xff, forwarded }), "203.0.113.9");
        assert.equal(resolve("2001:db8:aa:bb::1", { "x-forwarded-for": xff, forwarded }), "2001:db8:aa:bb::/64");
      }),
    );
  });

  it("takes a proxy written as an IPv4-mapped IPv6 address or CIDR as the IPv4 one (how a dual-stack socket reports its peer)", () => {
    const mapped = createClientAddressResolver(["::ffff:10.0.0.0/104", "::ffff:192.0.2.1"]);
    const hop = { "x-forwarded-for": "198.51.100.1" };
    assert.equal(mapped("::ffff:10.20.30.40", hop), "198.51.100.1");
    assert.equal(mapped("10.20.30.40", hop), "198.51.100.1");
    assert.equal(mapped("::ffff:192.0.2.1", hop), "198.51.100.1");
    assert.equal(mapped("11.0.0.1", hop), "11.0.0.1");
    assert.equal(mapped("192.0.2.2", hop), "192.0.2.2");
    assert.throws(() => createClientAddressResolver(["::ffff:10.0.0.0/80"]), /^Error: "::ffff:10\.0\.0\.0\/80": the prefix length of an IPv4-mapped address must be 96 to 128$/);
  });

  it("checks an IPv4 address against the IPv4 entries alone: an IPv6 subnet holding ::ffff:0:0/96 (::1/64, ::/80) trusts IPv6 addresses only", () => {
    const v6 = createClientAddressResolver(["::1/64", "::/80"]);
    const hop = { "x-forwarded-for": "198.51.100.1" };
    assert.equal(v6("203.0.113.5", hop), "203.0.113.5");
    assert.equal(v6("::ffff:203.0.113.5", hop), "203.0.113.5");
    assert.equal(v6("::1", hop), "198.51.100.1");
    assert.equal(v6("::2", { "x-forwarded-for": "203.0.113.5, ::3" }), "203.0.113.5");
  });

  it("counts an address of a listed NAT64 prefix as the IPv4 address it embeds where RFC 6052 puts it, for every length (RFC 6052's examples of 192.0.2.33), the longest prefix first", () => {
    const listed = ["2001:db8::/32", "2001:db8:100::/40", "2001:db8:122::/48", "2001:db8:122:300::/56", "2001:db8:122:344::/64", "2001:db8:122:344::/96"];
    const nat64 = createClientAddressResolver(["10.0.0.0/8"], listed);
    for (const address of ["2001:db8:c000:221::", "2001:db8:1c0:2:21::", "2001:db8:122:c000:2:2100::", "2001:db8:122:3c0:0:221::", "2001:db8:122:344:c0:2:2100:0", "2001:db8:122:344::192.0.2.33"]) {
      assert.equal(nat64(address, {}), "192.0.2.33", address);
      assert.equal(nat64("10.1.1.1", { "x-forwarded-for": address }), "192.0.2.33", `${address} as a hop`);
    }
    assert.equal(nat64("64:ff9b::c000:221", {}), "192.0.2.33", "the well-known prefix still");
    assert.equal(nat64("2001:db9::1", {}), "2001:db9::/64", "outside every prefix");
    const localUse = createClientAddressResolver([], ["64:ff9b:1:ab::/64"]);
    assert.equal(localUse("64:ff9b:1:ab:c6:3364:100:0", {}), "198.51.100.1");
    assert.equal(localUse("64:ff9b:1:ac:c6:3364:100:0", {}), "64:ff9b:1:ac::/64", "another /64 of 64:ff9b:1::/48");
  });

  it("counts every Teredo address (2001::/32) as its client's IPv4 address, its last 32 bits inverted, whatever its server, flags and port; an address of 2001:x::/32 other than 2001::/32 as its /64", () => {
    const quad = fc.integer({ min: 0, max: 0xffff });
    const ipv4 = fc.tuple(fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 255 }));
    fc.assert(
      fc.property(quad, quad, quad, quad, ipv4, (s1, s2, flags, port, client) => {
        const inverted = [((client[0] << 8) | client[1]) ^ 0xffff, ((client[2] << 8) | client[3]) ^ 0xffff];
        assert.equal(counted(formatIPv6([0x2001, 0, s1, s2, flags, port, ...inverted]), []), client.join("."));
      }),
    );
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 0xffff }), fc.array(quad, { minLength: 6, maxLength: 6 }), (second, rest) => {
        const groups = [0x2001, second, ...rest];
        assert.equal(counted(formatIPv6(groups), []), `${formatIPv6([...groups.slice(0, 4), 0, 0, 0, 0])}/64`);
      }),
    );
  });

  it("refuses a NAT64 prefix that is no IPv6 prefix of RFC 6052's lengths, naming it", () => {
    assert.throws(() => createClientAddressResolver([], ["64:ff9b:1::/50"]), /^Error: "64:ff9b:1::\/50": the prefix length must be 32, 40, 48, 56, 64 or 96 \(RFC 6052\)$/);
    assert.throws(() => createClientAddressResolver([], ["64:ff9b:1::"]), /^Error: "64:ff9b:1::" is not an IPv6 prefix \(address\/length\)$/);
    assert.throws(() => createClientAddressResolver([], ["64:ff9b:1::%eth0/96"]), /^Error: "64:ff9b:1::%eth0\/96" is not an IPv6 prefix \(address\/length\)$/);
    assert.throws(() => createClientAddressResolver([], ["10.0.0.0/8"]), /^Error: "10\.0\.0\.0\/8" is not an IPv6 prefix \(address\/length\)$/);
    assert.throws(() => createClientAddressResolver([], ["::ffff:0:0/96"]), /^Error: "::ffff:0:0\/96" is not an IPv6 prefix \(address\/length\)$/);
    assert.throws(() => createClientAddressResolver([], ["64:ff9b:1::1/96"]), /^Error: "64:ff9b:1::1\/96" has bits set beyond its \/96$/);
  });

  it("refuses a NAT64 prefix in Teredo's 2001::/32, whose addresses count as their clients' IPv4 addresses", () => {
    for (const cidr of ["2001::/32", "2001:0:4136::/48", "2001:0:4136:e378::/64", "2001:0:4136:e378:8000:63bf::/96"]) {
      assert.throws(
        () => createClientAddressResolver([], [cidr]),
        (e: Error) => e.message === `"${cidr}" lies in Teredo's 2001::/32 (RFC 4380), whose addresses are counted as their clients' IPv4 addresses`,
      );
    }
    // Beside it, 2001:1::/32 and 2001:db8::/32 are not Teredo's.
    assert.doesNotThrow(() => createClientAddressResolver([], ["2001:1::/32", "2001:db8:64::/96"]));
  });

  it("refuses a list entry that is no address or CIDR, naming it", () => {
    assert.throws(() => createClientAddressResolver(["10.0.0.0/33"]), /"10\.0\.0\.0\/33": the prefix length must be 0 to 32/);
    assert.throws(() => createClientAddressResolver(["proxy.internal"]), /"proxy\.internal" is not an IP address or CIDR/);
  });
});
