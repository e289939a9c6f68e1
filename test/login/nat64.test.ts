// A NAT64 translator, or a proxy, may present IPv4 clients to the server as IPv6 addresses of the
// well-known prefix 64:ff9b::/96 (RFC 6052): 64:ff9b::c000:201 is 192.0.2.1. Such an address
// counts as the IPv4 address it embeds, as an IPv4-mapped one (::ffff:192.0.2.1) does: as an
// IPv6 /64 every IPv4 client would share one address's window and one /48's, so one client's
// failures would lock out all the others. So does an address of a prefix the operator lists in
// TESSERA_NAT64_PREFIXES (a local-use one of 64:ff9b:1::/48, RFC 8215). A Teredo address
// (2001::/32, RFC 4380: 2001:0:<server IPv4>:<flags>:<port>:<client IPv4, every bit inverted>)
// counts as its client's IPv4 address too: its /64 is the Teredo server's, shared by every client
// of that server. Shown over REST (HTTP/1.1) and gRPC, the client addresses named by
// X-Forwarded-For, the test client's peer (127.0.0.1) being a trusted proxy.
import assert from "node:assert/strict";
import { ManualClock } from "../../src/core/clock.js";
import { SessionService } from "../../gen/tessera/session/v1/session_pb.js";
import { expectCode, restOutcome, RpcClient, type Outcome } from "../support/api.js";
import { rest } from "../support/clients.js";
import { startTestServer, storesUnderTest, type TestServer } from "../support/server.js";
import { clientIdHeader, uniqueEmail } from "../support/users.js";
import { expectRetryLater, wrongPassword } from "./api.js";

const locked = "too many failed logins; try again later";
const invalid = "invalid login or password";
/** A login's window: one failure; an address's: four. */
const perLogin = 1;
const perAddress = 4 * perLogin;
const per48 = 6;
const env = {
  TESSERA_TRUSTED_PROXIES: "127.0.0.1",
  TESSERA_LOGIN_MAX_FAILURES: String(perLogin),
  TESSERA_LOGIN_MAX_FAILURES_PER_IPV6_48: String(per48),
  TESSERA_NAT64_PREFIXES: "64:ff9b:1:ab::/64",
};

for (const store of storesUnderTest()) {
  describe(`login protection: a NAT64 (64:ff9b::/96) or Teredo (2001::/32) address counts as the IPv4 address it embeds (${store})`, function () {
    this.timeout(120_000);
    const clock = new ManualClock(Date.now());
    let server: TestServer;

    before(async () => (server = await startTestServer({ store, clock, env })));
    afterEach(() => clock.advance(16 * 60 * 1000)); // past every window and lock
    after(() => server?.close());

    /** POST /session (seed 000) over HTTP/1.1 from `address`. */
    const restLogIn = async (address: string, email: string, pass: string): Promise<Outcome<unknown>> =>
      restOutcome(
        await rest(server.url, "POST", "/session", { json: { account_type: "traditional", email, password: pass }, headers: { ...clientIdHeader, "x-forwarded-for": address } }),
      );
    /** SessionService/CreateSession over gRPC (@grpc/grpc-js) from `address`. */
    const grpcLogIn = (address: string, email: string, pass: string): Promise<Outcome<unknown>> =>
      rpc.callJson(SessionService.method.createSession, { account_type: "traditional", email, password: pass }, { ...clientIdHeader, "x-forwarded-for": address });
    let rpc: RpcClient;
    before(() => (rpc = new RpcClient("grpc", server.url)));
    after(() => rpc?.close());

    for (const [name, logIn] of [
      ["REST over HTTP/1.1", restLogIn],
      ["gRPC", grpcLogIn],
    ] as const) {
      describe(name, () => {
        /** A wrong password for a login nobody has (each is then locked itself), from `address`. */
        const guess = (address: string) => logIn(address, uniqueEmail("nat64-guess"), wrongPassword);

        it("failures from 64:ff9b::c000:201 (192.0.2.1) lock 192.0.2.1, however it is written, and not 64:ff9b::c633:6401 (198.51.100.1)", async () => {
          for (let i = 0; i < perAddress; i++) expectCode(await guess("64:ff9b::c000:201"), "unauthenticated", invalid, "INVALID_CREDENTIALS");
          const refused = await guess("64:ff9b::c000:201");
          expectRetryLater(refused, "resource_exhausted", locked, "LOGIN_LOCKED");
          assert.equal(refused.details?.reason, "LOGIN_LOCKED");
          expectCode(await guess("64:ff9b::c633:6401"), "unauthenticated", invalid, "INVALID_CREDENTIALS");
          for (const spelling of ["64:ff9b::192.0.2.1", "192.0.2.1", "::ffff:192.0.2.1"]) {
            expectRetryLater(await guess(spelling), "resource_exhausted", locked, "LOGIN_LOCKED");
          }
        });

        it("with TESSERA_NAT64_PREFIXES=64:ff9b:1:ab::/64 (local use, RFC 8215): failures from 64:ff9b:1:ab:c0:2:100:0 (192.0.2.1) lock 192.0.2.1, not 64:ff9b:1:ab:c6:3364:100:0 (198.51.100.1)", async () => {
          for (let i = 0; i < perAddress; i++) expectCode(await guess("64:ff9b:1:ab:c0:2:100:0"), "unauthenticated", invalid, "INVALID_CREDENTIALS");
          expectRetryLater(await guess("64:ff9b:1:ab:c0:2:100:0"), "resource_exhausted", locked, "LOGIN_LOCKED");
          expectCode(await guess("64:ff9b:1:ab:c6:3364:100:0"), "unauthenticated", invalid, "INVALID_CREDENTIALS");
          expectRetryLater(await guess("192.0.2.1"), "resource_exhausted", locked, "LOGIN_LOCKED");
        });

        it(`${3 * 3} failures from three IPv4 clients behind 64:ff9b::/96 are not one /48's (${per48}): none is locked`, async () => {
          for (const address of ["64:ff9b::cb00:7101", "64:ff9b::cb00:7102", "64:ff9b::cb00:7103"]) {
            for (let i = 0; i < 3; i++) expectCode(await guess(address), "unauthenticated", invalid, "INVALID_CREDENTIALS");
          }
        });

        // Teredo server 65.54.227.120 (4136:e378), flags 8000, client port 40000 (~ 63bf).
        const viaServer = (clientPort: string, client: string) => `2001:0:4136:e378:8000:${clientPort}:${client}`;

        it("failures from Teredo 2001:0:4136:e378:8000:63bf:3fff:fdd2 (192.0.2.45) lock 192.0.2.45, through any Teredo server, and not 198.51.100.1 through the same server", async () => {
          for (let i = 0; i < perAddress; i++) expectCode(await guess(viaServer("63bf", "3fff:fdd2")), "unauthenticated", invalid, "INVALID_CREDENTIALS");
          const refused = await guess(viaServer("63bf", "3fff:fdd2"));
          expectRetryLater(refused, "resource_exhausted", locked, "LOGIN_LOCKED");
          assert.equal(refused.details?.reason, "LOGIN_LOCKED");
          // The same server's /64 and /48, another client (~ 39cc:9bfe is 198.51.100.1).
          expectCode(await guess(viaServer("3caf", "39cc:9bfe")), "unauthenticated", invalid, "INVALID_CREDENTIALS");
          for (const spelling of ["192.0.2.45", "::ffff:192.0.2.45", "2001::cb00:7101:0:ffff:3fff:fdd2", "2001:0:4136:E378:8000:63BF:63.255.253.210"]) {
            expectRetryLater(await guess(spelling), "resource_exhausted", locked, "LOGIN_LOCKED");
          }
        });

        it("failures from 203.0.113.9 lock Teredo 2001:0:4136:e378:8000:63bf:34ff:8ef6, which embeds it", async () => {
          for (let i = 0; i < perAddress; i++) expectCode(await guess("203.0.113.9"), "unauthenticated", invalid, "INVALID_CREDENTIALS");
          expectRetryLater(await guess(viaServer("63bf", "34ff:8ef6")), "resource_exhausted", locked, "LOGIN_LOCKED");
          expectCode(await guess(viaServer("63bf", "34ff:8ef5")), "unauthenticated", invalid, "INVALID_CREDENTIALS");
        });

        it(`${3 * 3} failures from three clients of one Teredo server are not one /64's (${perAddress}) nor one /48's (${per48}): none is locked`, async () => {
          for (const client of ["34ff:8efe", "34ff:8efd", "34ff:8efc"]) {
            for (let i = 0; i < 3; i++) expectCode(await guess(viaServer("63bf", client)), "unauthenticated", invalid, "INVALID_CREDENTIALS");
          }
        });
      });
    }
  });
}
