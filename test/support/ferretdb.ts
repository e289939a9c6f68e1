// A private FerretDB instance for tests that stop and restart the database (outages,
// reconnects). It runs on its own port and its own PostgreSQL database, so it never disturbs
// the shared MONGODB_URI server. Needs the FerretDB binary (FERRETDB_BIN; .ci/run builds it).
import { spawn, execFileSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { connect, createServer, type Server, type Socket } from "node:net";
import { freePort } from "./net.js";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";

export function ferretdbBinary(): string | undefined {
  const bin = process.env.FERRETDB_BIN ?? "/tmp/ferretdb-bin";
  return existsSync(bin) ? bin : undefined;
}

function postgresUrlBase(): string {
  return process.env.FERRETDB_POSTGRESQL_URL_BASE ?? "postgres://postgres@127.0.0.1:5432";
}

async function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const ok = await new Promise<boolean>((resolve) => {
      const c = connect(port, "127.0.0.1");
      c.once("connect", () => { c.destroy(); resolve(true); });
      c.once("error", () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`FerretDB did not listen on ${port} within ${timeoutMs} ms`);
}

/**
 * A TCP relay between FerretDB and PostgreSQL that a test can cut: every relayed connection is
 * reset and new ones are refused (the port no longer listens), as when PostgreSQL goes down or
 * the network to it fails while FerretDB itself stays up; `restore()` listens again.
 */
class BackendLink {
  private server?: Server;
  private readonly sockets = new Set<Socket>();
  private constructor(
    readonly port: number,
    private readonly target: { host: string; port: number },
  ) {}

  /**
   * On a port below the kernel's ephemeral range (32768 and up here): while the link is cut its
   * port is free, and one handed out for an outgoing connection or by `freePort()` (port 0)
   * could otherwise take it before `restore()` listens there again.
   */
  static async open(target: { host: string; port: number }): Promise<BackendLink> {
    for (let attempt = 0; ; attempt++) {
      const link = new BackendLink(20000 + Math.floor(Math.random() * 12000), target);
      try {
        await link.restore();
        return link;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== "EADDRINUSE" || attempt >= 20) throw error;
      }
    }
  }

  async restore(): Promise<void> {
    if (this.server) return;
    const server = createServer((client) => {
      const upstream = connect(this.target.port, this.target.host);
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.once("close", () => this.sockets.delete(s));
        s.on("error", () => {});
      }
      client.once("close", () => upstream.destroy());
      upstream.once("close", () => client.destroy());
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve, reject) => server.once("error", reject).listen(this.port, "127.0.0.1", resolve));
    this.server = server;
  }

  async cut(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const s of this.sockets) s.resetAndDestroy();
    await closed;
  }
}

/** The certificate and key files a FerretDB listening with TLS presents (PEM). */
export interface FerretDbTls {
  certFile: string;
  keyFile: string;
}

/**
 * `backendLink`: FerretDB reaches PostgreSQL through a relay the test can cut
 * (cutBackend/restoreBackend). `tls`: it listens with TLS only, presenting that certificate.
 */
export interface FerretDbOptions {
  backendLink?: boolean;
  tls?: FerretDbTls;
}

export class PrivateFerretDb {
  private child?: ChildProcess;
  private readonly stateDir = mkdtempSync(join(tmpdir(), "tessera-ferretdb-"));
  private link?: BackendLink;
  private constructor(
    private readonly bin: string,
    readonly port: number,
    private readonly pgDatabase: string,
    private readonly tls: FerretDbTls | undefined,
  ) {}

  get uri(): string {
    return `mongodb://127.0.0.1:${this.port}/`;
  }

  /** Whether the server process runs (it may be paused). */
  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  static async start(o: FerretDbOptions = {}): Promise<PrivateFerretDb> {
    const db = await PrivateFerretDb.prepare(o);
    await db.resume();
    return db;
  }

  /**
   * Its port and database, the server not started yet (`resume()` starts it): a database that
   * comes up after the service that uses it.
   */
  static async prepare(o: FerretDbOptions = {}): Promise<PrivateFerretDb> {
    const bin = ferretdbBinary();
    if (!bin) throw new Error("FerretDB binary not found (set FERRETDB_BIN)");
    const pgDatabase = `tessera_fdb_${randomBytes(5).toString("hex")}`;
    execFileSync("psql", ["-h", "127.0.0.1", "-U", "postgres", "-qc", `CREATE DATABASE ${pgDatabase}`]);
    const db = new PrivateFerretDb(bin, await freePort(), pgDatabase, o.tls);
    if (o.backendLink) {
      const pg = new URL(postgresUrlBase());
      db.link = await BackendLink.open({ host: pg.hostname, port: Number(pg.port || 5432) });
    }
    return db;
  }

  /** PostgreSQL unreachable for FerretDB, which stays up (needs `backendLink`). */
  async cutBackend(): Promise<void> {
    if (!this.link) throw new Error("started without backendLink");
    await this.link.cut();
  }

  /** PostgreSQL reachable again. */
  async restoreBackend(): Promise<void> {
    await this.link?.restore();
  }

  /** (Re)starts the server on the same port and database. */
  async resume(): Promise<void> {
    const base = new URL(postgresUrlBase());
    if (this.link) base.host = `127.0.0.1:${this.link.port}`;
    this.child = spawn(
      this.bin,
      [
        "--handler=postgresql",
        // FerretDB's pool defaults to 50 PostgreSQL connections: a few instances of the parallel
        // suite (and the shared server) used up PostgreSQL's max_connections (100), and a restarted
        // instance was refused its new ones ("too many clients already"). 10 serve a test's load.
        `--postgresql-url=${String(base).replace(/\/$/, "")}/${this.pgDatabase}?pool_max_conns=10`,
        ...(this.tls === undefined
          ? [`--listen-addr=127.0.0.1:${this.port}`]
          : ["--listen-addr=", `--listen-tls=127.0.0.1:${this.port}`, `--listen-tls-cert-file=${this.tls.certFile}`, `--listen-tls-key-file=${this.tls.keyFile}`]),
        // no debug/metrics listener: its fixed default port would clash between instances
        "--debug-addr=-",
        `--state-dir=${this.stateDir}`,
        "--telemetry=disable",
        "--log-level=error",
      ],
      { stdio: "ignore" },
    );
    await waitForPort(this.port, 15000);
  }

  /** Stops the server (the outage). */
  async stop(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      child.once("exit", () => resolve());
      child.kill("SIGKILL");
    });
    this.child = undefined;
  }

  /** Freezes the server (SIGSTOP): connections stay open but nothing answers — a hung database. */
  pause(): void {
    this.child?.kill("SIGSTOP");
  }

  /** Thaws a paused server (SIGCONT). */
  unpause(): void {
    this.child?.kill("SIGCONT");
  }

  async destroy(): Promise<void> {
    await this.stop();
    await this.link?.cut();
    rmSync(this.stateDir, { recursive: true, force: true });
    try {
      execFileSync("psql", ["-h", "127.0.0.1", "-U", "postgres", "-qc", `DROP DATABASE IF EXISTS ${this.pgDatabase} WITH (FORCE)`]);
    } catch {
      // best effort
    }
  }
}
