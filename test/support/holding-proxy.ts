// A TCP proxy in front of MongoDB that can hold, on the connection that sends it, a command the
// test picks (and everything sent after it on that connection) until released, and counts the
// commands it passes on: a database that does not answer one operation while the others flow.
import net from "node:net";
import type { Clock } from "../../src/core/clock.js";
import { startTestServer, type TestServer } from "./server.js";

/** Which commands to hold or count: every chunk a client sends that holds all of these byte strings. */
export type CommandMatch = readonly string[];

const matches = (chunk: Buffer, what: CommandMatch) => what.every((s) => chunk.includes(s));

export class HoldingProxy {
  /** While set, a command matching it is held (with what follows it on its connection). */
  hold: CommandMatch | undefined;
  /** How many commands matching `count` were passed on since it was set. */
  counted = 0;
  /**
   * How long each command waits before it is passed on: a database this much further away. (A
   * connection sends its next command once its last is answered, so none overtakes another.)
   */
  delayMs = 0;
  /** While set, each command matching `match` waits `ms` before it is passed on (instead of `delayMs`). */
  slow: { match: CommandMatch; ms: number } | undefined;
  private countMatch: CommandMatch | undefined;
  private readonly released: Array<{ release(): void; cut(deliver: boolean): void }> = [];
  private readonly sockets = new Set<net.Socket>();
  private constructor(private readonly server: net.Server) {}

  /** A proxy to the server of MONGODB_URI. */
  static async start(mongodbUri: string): Promise<HoldingProxy> {
    const target = new URL(mongodbUri);
    const server = net.createServer();
    const proxy = new HoldingProxy(server);
    server.on("connection", (client) => {
      const upstream = net.connect(Number(target.port || 27017), target.hostname);
      proxy.sockets.add(client).add(upstream);
      const held: Buffer[] = [];
      let holds = false;
      // Cut on the client's side only (cut()): the server's side ends once sent what it held.
      let cut = false;
      client.on("data", (chunk: Buffer) => {
        if (!holds && proxy.hold !== undefined && matches(chunk, proxy.hold)) {
          holds = true;
          proxy.released.push({
            release: () => {
              holds = false;
              for (const c of held.splice(0)) proxy.pass(upstream, c);
            },
            cut: (deliver) => {
              cut = true;
              client.destroy();
              for (const c of held.splice(0)) if (deliver) proxy.pass(upstream, c);
              upstream.end();
            },
          });
        }
        if (holds) held.push(chunk);
        else proxy.pass(upstream, chunk);
      });
      upstream.on("data", (chunk: Buffer) => {
        if (!cut) client.write(chunk);
      });
      const end = () => {
        client.destroy();
        if (!cut) upstream.destroy();
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

  /** Counts the commands matching `what` passed on from now on. */
  count(what: CommandMatch): void {
    this.countMatch = what;
    this.counted = 0;
  }

  /** How many connections have a command held. */
  get holding(): number {
    return this.released.length;
  }

  /** Resolves once a command is held. */
  async held(): Promise<void> {
    while (this.holding === 0) await new Promise((resolve) => setTimeout(resolve, 5));
  }

  /** Passes on everything held, and holds nothing more. */
  release(): void {
    this.hold = undefined;
    for (const r of this.released.splice(0)) r.release();
  }

  /**
   * Drops every connection holding a command on the client's side, and holds nothing more: the
   * driver sees it lost (the operation fails, not telling whether it was made), and the server
   * is sent what it held all the same (`deliver`), applying it as a server does with a lost
   * connection's last command, or never sees it.
   */
  cut(deliver: boolean): void {
    this.hold = undefined;
    for (const r of this.released.splice(0)) r.cut(deliver);
  }

  async close(): Promise<void> {
    this.release();
    for (const s of this.sockets) s.destroy();
    await new Promise((resolve) => this.server.close(resolve));
  }

  private pass(upstream: net.Socket, chunk: Buffer): void {
    if (this.countMatch !== undefined && matches(chunk, this.countMatch)) this.counted++;
    const delayMs = this.slow !== undefined && matches(chunk, this.slow.match) ? this.slow.ms : this.delayMs;
    if (delayMs > 0) setTimeout(() => upstream.write(chunk), delayMs);
    else upstream.write(chunk);
  }
}

/**
 * In the enclosing describe: a HoldingProxy in front of MONGODB_URI, and a Tessera on MongoDB
 * reaching it through the proxy (`query`: the URI's options, `?maxPoolSize=1`), started before the
 * suite's tests and handed to `started`; closed after them, whatever the proxy still holds released.
 */
export function behindHoldingProxy(
  options: { env: Record<string, string>; query?: string; clock?: Clock },
  started: (proxy: HoldingProxy, server: TestServer) => void,
): void {
  let proxy: HoldingProxy | undefined;
  let server: TestServer | undefined;
  before(async () => {
    proxy = await HoldingProxy.start(process.env.MONGODB_URI!);
    server = await startTestServer({
      store: "mongo",
      ...(options.clock !== undefined && { clock: options.clock }),
      env: { MONGODB_URI: `mongodb://127.0.0.1:${proxy.port}/${options.query ?? ""}`, ...options.env },
    });
    started(proxy, server);
  });
  after(async () => {
    proxy?.release();
    await server?.close();
    await proxy?.close();
  });
}
