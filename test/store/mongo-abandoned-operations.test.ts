// A store call that MongoDB does not answer within TESSERA_STORE_TIMEOUT_MS is answered
// UNAVAILABLE (503), and the operation is given up as well: one still waiting for a connection
// of the driver's pool leaves its queue then, instead of waiting there for as long as the
// database is slow and running once a connection is free, after its caller has gone. Without
// that bound, a database that answers slower than calls arrive (the calls' own load can make it
// so) holds an ever longer queue of operations nobody waits for, in memory, and runs them all
// later, stale.
//
// Shown with one connection in the pool (maxPoolSize=1 in MONGODB_URI) behind a TCP proxy that
// holds the commands sent once a `ping` has gone (GET /readyz pings): the first ping waits on
// the connection, the next ones for it; the proxy counts the pings that reach the database.
import assert from "node:assert/strict";
import net from "node:net";
import { startTestServer, storesUnderTest, type TestServer } from "../support/server.js";

/** A TCP proxy to MongoDB that can hold what clients send once a ping has been sent, and counts pings. */
class HoldingProxy {
  holding = false;
  /** `ping` commands passed on to the database since counting started. */
  pings = 0;
  private readonly released: Array<() => void> = [];
  private readonly sockets = new Set<net.Socket>();
  private constructor(private readonly server: net.Server) {}

  static async start(target: { host: string; port: number }): Promise<HoldingProxy> {
    const server = net.createServer();
    const proxy = new HoldingProxy(server);
    server.on("connection", (client) => {
      const upstream = net.connect(target.port, target.host);
      proxy.sockets.add(client).add(upstream);
      const held: Buffer[] = [];
      let holds = false;
      client.on("data", (chunk: Buffer) => {
        if (!holds && proxy.holding && chunk.includes("ping\0")) {
          holds = true;
          proxy.released.push(() => {
            holds = false;
            for (const c of held.splice(0)) proxy.pass(upstream, c);
          });
        }
        if (holds) held.push(chunk);
        else proxy.pass(upstream, chunk);
      });
      upstream.on("data", (chunk: Buffer) => client.write(chunk));
      const end = () => {
        client.destroy();
        upstream.destroy();
      };
      client.on("close", end).on("error", end);
      upstream.on("close", end).on("error", end);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    return proxy;
  }

  get port(): number {
    return (this.server.address() as net.AddressInfo).port;
  }

  /** Passes on everything held, and holds nothing more. */
  release(): void {
    this.holding = false;
    for (const r of this.released.splice(0)) r();
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise((resolve) => this.server.close(resolve));
  }

  private pass(upstream: net.Socket, chunk: Buffer): void {
    for (let i = chunk.indexOf("ping\0"); i >= 0; i = chunk.indexOf("ping\0", i + 1)) this.pings++;
    upstream.write(chunk);
  }
}

const readyz = async (server: TestServer) => (await fetch(`${server.url}/readyz`)).status;

for (const store of storesUnderTest().filter((s) => s === "mongo")) {
  describe(`store: MongoDB operations whose caller has been answered UNAVAILABLE are given up (${store})`, function () {
    this.timeout(60_000);
    let proxy: HoldingProxy;
    let server: TestServer;
    before(async () => {
      const target = new URL(process.env.MONGODB_URI!);
      proxy = await HoldingProxy.start({ host: target.hostname, port: Number(target.port || 27017) });
      server = await startTestServer({
        store: "mongo",
        env: { MONGODB_URI: `mongodb://127.0.0.1:${proxy.port}/?maxPoolSize=1`, TESSERA_STORE_TIMEOUT_MS: "300" },
      });
    });
    after(async () => {
      proxy?.release();
      await server?.close();
      await proxy?.close();
    });

    it("20 readiness probes while the database holds the one connection: each answers 503, and only the ping on the wire ever reaches the database", async () => {
      assert.equal(await readyz(server), 200);
      proxy.holding = true;
      proxy.pings = 0;
      const statuses = await Promise.all(Array.from({ length: 20 }, () => readyz(server)));
      assert.deepEqual([...new Set(statuses)], [503]);
      // Every probe has been answered, each after its 300 ms; its operation's wait for a
      // connection began before that answer and is due no later than it. (Server and test share
      // one process, so the timer below fires after those.)
      await new Promise((r) => setTimeout(r, 1000));
      proxy.release();
      // The next probe's ping queues behind whatever still waits for the connection: once it is
      // answered, everything that was going to reach the database has.
      assert.equal(await readyz(server), 200);
      assert.equal(proxy.pings, 2, "the ping held on the wire and the last probe's; none of the 19 that waited for the connection");
    });
  });
}
