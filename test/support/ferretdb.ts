// A private FerretDB instance for tests that stop and restart the database (outages,
// reconnects). It runs on its own port and its own PostgreSQL database, so it never disturbs
// the shared MONGODB_URI server. Needs the FerretDB binary (FERRETDB_BIN; .ci/run builds it).
import { spawn, execFileSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from "node:fs";
import { connect, createServer, type Server, type Socket } from "node:net";
import { freePort } from "./net.js";
import { stopProcess } from "./process.js";
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

/** The inode of the socket listening on TCP `port` (any address), from /proc/net/tcp{,6}: Linux. */
function listenerInode(port: number): string | undefined {
  const hex = `:${port.toString(16).toUpperCase().padStart(4, "0")}`;
  for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text: string;
    try {
      text = readFileSync(table, "utf8");
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      // sl, local address, remote address, state (0A: LISTEN), ..., inode (the tenth field).
      const f = line.trim().split(/\s+/);
      if (f.length > 9 && f[1]!.endsWith(hex) && f[3] === "0A") return f[9];
    }
  }
  return undefined;
}

/** Whether process `pid` holds socket `inode` among its file descriptors. */
function holdsSocket(pid: number, inode: string): boolean {
  try {
    return readdirSync(`/proc/${pid}/fd`).some((fd) => {
      try {
        return readlinkSync(`/proc/${pid}/fd/${fd}`) === `socket:[${inode}]`;
      } catch {
        return false; // closed meanwhile
      }
    });
  } catch {
    return false; // gone
  }
}

/** The server could not listen on its port: another process holds it. */
class PortTakenError extends Error {}

/**
 * Waits until `child` itself listens on `port`. A port from freePort() may be taken by another
 * process before the server binds it (two suites running side by side); the server then exits,
 * while a check that only connects would find the other process's listener there, and a test
 * would talk to another server (a paused server that still answered, seen under load).
 */
async function waitForOwnListener(child: ChildProcess, port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      if (listenerInode(port) !== undefined) throw new PortTakenError(`FerretDB could not listen on ${port}: another process does`);
      throw new Error(`FerretDB exited (${child.exitCode ?? child.signalCode}) before it listened on ${port}`);
    }
    const inode = listenerInode(port);
    if (inode !== undefined && child.pid !== undefined && holdsSocket(child.pid, inode)) return;
    await new Promise((r) => setTimeout(r, 50));
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
    for (let attempt = 0; ; attempt++) {
      const db = await PrivateFerretDb.prepare(o);
      try {
        await db.resume();
        return db;
      } catch (error) {
        await db.destroy();
        // Its port was taken before it listened: another one (a restart keeps its port, and fails).
        if (!(error instanceof PortTakenError) || attempt >= 4) throw error;
      }
    }
  }

  /**
   * Its port and database, the server not started yet (`resume()` starts it): a database that
   * comes up after the service that uses it.
   */
  static async prepare(o: FerretDbOptions = {}): Promise<PrivateFerretDb> {
    const bin = ferretdbBinary();
    if (!bin) throw new Error("FerretDB binary not found (set FERRETDB_BIN)");
    const pgDatabase = `tessera_fdb_${randomBytes(5).toString("hex")}`;
    // Test data only: commits do not wait for their WAL to reach the disk (as .ci/run's database).
    execFileSync("psql", ["-h", "127.0.0.1", "-U", "postgres", "-q", "-c", `CREATE DATABASE ${pgDatabase}`, "-c", `ALTER DATABASE ${pgDatabase} SET synchronous_commit = off`]);
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
      // Go's collector a quarter as often (as .ci/run's FerretDB): less CPU on a busy machine.
      { stdio: "ignore", env: { ...process.env, GOGC: "400" } },
    );
    await waitForOwnListener(this.child, this.port, 15000);
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

  /**
   * Freezes the server (SIGSTOP): connections stay open but nothing answers — a hung database.
   * Resolves once every thread of it is stopped. kill() returns with the signal only pending: the
   * stop begins when one thread of the process takes it, and until then its other threads run on.
   * Under load that took more than 100 ms, and requests sent after kill() returned were answered (a
   * login slot reserved while the server was "paused").
   */
  async pause(): Promise<void> {
    const child = this.child;
    if (!child?.pid || !this.running) throw new Error("FerretDB is not running: nothing to pause");
    await stopProcess(child.pid, "FerretDB");
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
