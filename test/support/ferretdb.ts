// A private FerretDB instance for tests that stop and restart the database (outages,
// reconnects). It runs on its own port and its own PostgreSQL database, so it never disturbs
// the shared MONGODB_URI server. Needs the FerretDB binary (FERRETDB_BIN; .ci/run builds it).
import { spawn, execFileSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { connect } from "node:net";
import { freePort } from "./net.js";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";

export function ferretdbBinary(): string | undefined {
  const bin = process.env.FERRETDB_BIN ?? "/tmp/ferretdb-bin";
  return existsSync(bin) ? bin : undefined;
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

export class PrivateFerretDb {
  private child?: ChildProcess;
  private readonly stateDir = mkdtempSync(join(tmpdir(), "tessera-ferretdb-"));
  private constructor(
    private readonly bin: string,
    readonly port: number,
    private readonly pgDatabase: string,
  ) {}

  get uri(): string {
    return `mongodb://127.0.0.1:${this.port}/`;
  }

  /** Whether the server process runs (it may be paused). */
  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  static async start(): Promise<PrivateFerretDb> {
    const bin = ferretdbBinary();
    if (!bin) throw new Error("FerretDB binary not found (set FERRETDB_BIN)");
    const pgDatabase = `tessera_fdb_${randomBytes(5).toString("hex")}`;
    execFileSync("psql", ["-h", "127.0.0.1", "-U", "postgres", "-qc", `CREATE DATABASE ${pgDatabase}`]);
    const db = new PrivateFerretDb(bin, await freePort(), pgDatabase);
    await db.resume();
    return db;
  }

  /** (Re)starts the server on the same port and database. */
  async resume(): Promise<void> {
    const base = process.env.FERRETDB_POSTGRESQL_URL_BASE ?? "postgres://postgres@127.0.0.1:5432";
    this.child = spawn(
      this.bin,
      [
        "--handler=postgresql",
        // FerretDB's pool defaults to 50 PostgreSQL connections: a few instances of the parallel
        // suite (and the shared server) used up PostgreSQL's max_connections (100), and a restarted
        // instance was refused its new ones ("too many clients already"). 10 serve a test's load.
        `--postgresql-url=${base}/${this.pgDatabase}?pool_max_conns=10`,
        `--listen-addr=127.0.0.1:${this.port}`,
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
    rmSync(this.stateDir, { recursive: true, force: true });
    try {
      execFileSync("psql", ["-h", "127.0.0.1", "-U", "postgres", "-qc", `DROP DATABASE IF EXISTS ${this.pgDatabase} WITH (FORCE)`]);
    } catch {
      // best effort
    }
  }
}
