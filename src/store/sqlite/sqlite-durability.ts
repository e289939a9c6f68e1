import { closeSync, fsync as fsyncFd, fsyncSync, openSync } from "node:fs";
import type Database from "better-sqlite3";
import { DuplicateError, StoreUnavailableError, withDurable } from "../ports.js";
import { callLater, mapSqliteError, meansFull } from "./sqlite-errors.js";

/**
 * How the embedded store's writes reach the disk: a group commit of the write-ahead log.
 *
 * The connection commits at synchronous=NORMAL: in WAL mode a commit appends its pages to the
 * WAL in the OS page cache and fsyncs nothing, which already keeps every commit across a crash
 * or kill of the process. A write whose answer must also survive a power cut or an OS crash
 * (a new user, a password change, a revocation: nearly all of them) resolves only after an
 * fsync of the WAL that started after its commit. That fsync runs on libuv's thread pool, not
 * on the event loop, and commits made while one runs share the next: under load, one fsync
 * serves many writes, and the event loop (token checks, the next request's parse) never waits on
 * the disk. WAL recovery keeps a prefix of the commits, so a write acknowledged after an fsync
 * keeps every commit before it too. Checkpoints (the log copied into the database file) run on a
 * worker thread, not in a commit (sqlite-checkpoints.ts); SQLite syncs the WAL before each and the
 * database after it, so a checkpoint never loses a commit. What still syncs on the event loop is
 * SQLite's own: the first commit of a new log (once the log has all been copied, after each
 * checkpoint) writes the log's header and syncs it before its frames (about one to seven
 * milliseconds measured, once per log of about 1000 pages).
 *
 * `cheaply(write)` marks writes whose loss on a power cut costs little: their call resolves at
 * once, and the next fsync (anyone's) makes them durable:
 * - the lastLoginAt and the login's audit event of a seed 000 login, and the session.ended
 *   events of the sessions it ended for the cap (setLastLogin's and AuditEventStore.append's
 *   syncedByNextWrite), which the fsync the login waits for makes
 *   durable before the answer (its session and first refresh token are committed after them, in
 *   one transaction, by deferred(), then its session.started event, with or after the login's
 *   event and the cap's, whose fsync covers all of them); a refresh token's spend and the session's move to the new access
 *   token, committed before the refresh's child refresh token (deferredSpend()), then its
 *   session.refreshed event, whose fsync covers the three: a power cut loses either all of a
 *   refresh or its end, as if the answer had been lost on its way (the same refresh, retried,
 *   answers the same pair);
 * - login-attempt counters and remembered logins, written two or three times by every login and
 *   sign-up, refused ones included, and audit events of refused calls: losing them to a power
 *   cut gives a guesser back at most the attempts of its last moments, once per power cut.
 *
 * A logout's end of its session (deferredSpend()) and delete of the session's refresh tokens
 * (deferred()) are committed without an fsync of their own too: its session.ended event's
 * fsync covers both, and the logout still makes one when that event is not stored.
 *
 * `spend(fn)` is call() for single-use spends (a consume, a revocation): the caller
 * whose conditional write changed no row lost, or found the thing spent already, and its answer
 * rests on a commit that may not be on disk yet (the winner's, still waiting for its fsync,
 * cheap, or another process's). It resolves once every commit made so far is on disk: at once
 * when nothing was committed since the last fsync that succeeded started, so a spend that races
 * with nothing waits for no fsync.
 *
 * A failed fsync fails the connection for good (PostgreSQL's answer to "fsyncgate"). On Linux a
 * failed writeback may already have dropped the WAL pages it could not write (they are marked
 * clean, and the error is reported once per descriptor), so a later fsync that succeeds proves
 * nothing about them, and WAL recovery stops at the first frame that does not read back whole:
 * a write acknowledged after such a retry could still be lost to a power cut. So the writes that
 * waited for the failed fsync, every write waiting for a later one and every later write are
 * refused (StoreUnavailableError, "... it refuses writes until restarted"); the connection is
 * made query-only, so a refused write commits nothing, while reads keep answering. Nothing is
 * acknowledged again until the process restarts. `cheaply` writes committed before the failure
 * lose nothing more than they may lose to any power cut: each is made durable by a later write
 * of the same call, which is now refused (so is its call), or is a counter or a refusal's audit
 * event.
 */
export interface SqliteCalls {
  /**
   * Runs a better-sqlite3 call as the async port expects. The call itself is atomic (one
   * statement or one transaction, run to completion), so the caller's deadline is checked only
   * before it starts. When it changed rows (beyond those `cheaply` made), it resolves once they
   * are on disk.
   */
  call<T>(fn: () => T): Promise<T>;
  /**
   * call() for a single-use spend, a conditional write of which at most one caller wins (a
   * consume, a revocation, a user token's logout; a logout of a session, a refresh's spend and
   * its child refresh token go through deferredSpend()). The winner is answered as call() answers it. A call that changed no row (or whose
   * insert is a DuplicateError) lost the race, or found the thing spent already: its answer
   * rests on the winner's commit, which may not be on disk yet (the winner still waits for its
   * fsync, made none, cheaply(), or is another process on the file). So it resolves once every
   * commit it may have read is on disk: at once when no commit was made since the start of the
   * last fsync that succeeded (nothing races it), else after the fsync under way or the next.
   */
  spend<T>(fn: () => T): Promise<T>;
  /**
   * call() for a write whose caller makes its last writes after it and waits for their fsync
   * (a login's credential, then its audit event): resolves once committed, with `durable`,
   * which resolves once an fsync that started after this commit has returned: at once when one
   * has (the later write's own), else after the one under way when it started after the commit,
   * else after the next. So a caller whose later write was not made, or not synced (auditing
   * off, the event refused), still waits for one fsync, and one whose later write was synced
   * waits for none more, whatever other calls committed meanwhile. Not bounded by the caller's
   * deadline: the wait only makes a commit durable.
   */
  deferred<T>(fn: () => T): Promise<{ result: T; durable: () => Promise<void> }>;
  /**
   * deferred() for a single-use spend (see spend()): the winner is answered as deferred()
   * answers it. A call that changed no row lost, and is answered at once too, with `durable`,
   * which resolves once every commit it may have read is on disk (WalSync.durableLater); one
   * whose insert is a DuplicateError is refused at once, that wait riding on the error (withDurable).
   * Its caller records its audit event first: that event's fsync starts after the winner's
   * commit, so the loser waits for one fsync, not for one before its event and one after. A
   * session's end (a logout, whose audit event's fsync covers it), a refresh's spend of its
   * refresh token and its child refresh token (which a concurrent caller of the same refresh
   * may have stored).
   */
  deferredSpend<T>(fn: () => T): Promise<{ result: T; durable: () => Promise<void> }>;
  /** Inside call(): the rows `write` changes do not hold the answer for an fsync. */
  cheaply<T>(write: () => T): T;
  /**
   * Resolves once every commit made so far is on disk: for writes made outside call() (an audit
   * batch), and for a cheaply() write whose call's next write failed (SessionStore.synced).
   */
  synced(): Promise<void>;
  /** fsyncs the WAL now, on the event loop: for start-up, after the schema is made. */
  syncNow(): void;
  /** Waits for the fsync under way and releases the WAL's descriptor (after the database closed). */
  close(): Promise<void>;
  /** Once the connection has failed for good: the error every write is refused with. */
  failure(): StoreUnavailableError | undefined;
  /** The error every write is refused with now: failure(), else hold()'s. */
  refusal(): StoreUnavailableError | undefined;
  /**
   * Refuses every write with `refusal` (the connection made query-only; reads keep answering)
   * until called without one: the store's start-up checkpoint of its log is owed
   * (sqlite-store.ts). A connection failed for good stays query-only.
   */
  hold(refusal?: StoreUnavailableError): void;
  /**
   * Whether the last write met a full disk (meansFull: SQLITE_FULL, SQLITE_IOERR_SHMSIZE,
   * SQLITE_IOERR_WRITE) and no write has committed since: the store answers reads but takes no
   * write, until space is back (ping() then tries a write).
   */
  full(): boolean;
  /** A write committed (ping()'s probe of a full disk): full() is false again. */
  notFull(): void;
  /**
   * A write made outside call() (an audit batch) failed with `error`: a full disk (meansFull)
   * counts as a call's does, full() true and `full` of SqliteCallsOptions told.
   */
  writeFailed(error: unknown): void;
  /**
   * Another process's write on the same database met a full disk: full() is true, as if a write
   * here had (ping() then probes the disk), without telling `full` of SqliteCallsOptions.
   */
  fill(): void;
  /**
   * Fails the connection for good as a failed fsync does, with `message` (another process on the
   * same database found its log unsynced): not reported to `failed`. The first failure stays.
   */
  fail(message: string): void;
}

export interface SqliteCallsOptions {
  /** fs.fsync, replaceable so a test can count, hold and fail the syncs. */
  fsync?: (fd: number, done: (error: NodeJS.ErrnoException | null) => void) => void;
  /** Told once when an fsync of the WAL fails, with the error every write is refused with from then on. */
  failed?: (error: StoreUnavailableError) => void;
  /** Told when a write meets a full disk (meansFull) while full() is false. */
  full?: () => void;
  /**
   * Told after a call (or a cheaply() write outside one) committed rows, with total_changes()
   * then: how the store's checkpoints learn that the log may have grown (sqlite-checkpoints.ts).
   */
  committed?: (changes: number) => void;
}

/**
 * A deferred() or deferredSpend() answer as a ...ThenSync port method gives it: the call's result
 * under `key` (the port's name for it: "record", "ended", ...), with `durable`.
 */
export async function thenSync<K extends string, T>(
  key: K,
  answer: Promise<{ result: T; durable: () => Promise<void> }>,
): Promise<{ [P in K]: T } & { durable: () => Promise<void> }> {
  const { result, durable } = await answer;
  return { [key]: result, durable } as { [P in K]: T } & { durable: () => Promise<void> };
}

const registry = new WeakMap<Database.Database, SqliteCalls>();

/** The calls of `db` (one set per connection: they share its group commit). */
export function sqliteCalls(db: Database.Database, options: SqliteCallsOptions = {}): SqliteCalls {
  let calls = registry.get(db);
  if (!calls) {
    calls = createCalls(db, new WalSync(db, options.fsync ?? fsyncFd, options.failed ?? (() => {})), options.committed ?? (() => {}), options.full ?? (() => {}));
    registry.set(db, calls);
  }
  return calls;
}

function createCalls(db: Database.Database, wal: WalSync, told: (changes: number) => void, tellFull: () => void): SqliteCalls {
  const changes = wal.changes;
  let cheap = 0;
  let full = false;
  let held: StoreUnavailableError | undefined;
  const refusal = () => wal.failure ?? held;
  const writeFailed = (error: unknown) => {
    if (meansFull(error) && !full) {
      full = true;
      tellFull();
    }
  };
  /**
   * Runs `fn`. A spend (`lost` given) that lost (it changed no row, or its insert is a
   * DuplicateError) settles with `lost(outcome, durable)`: `durable` resolves once every commit
   * it may have read is on disk (WalSync.durableLater). Any other call settles with
   * `won(result, changed, committed)`: `changed`, the rows it changed beyond cheaply()'s,
   * `committed`, changes() after it.
   */
  const run = <T, R>(
    fn: () => T,
    won: (result: T, changed: number, committed: number) => Promise<R>,
    lost?: (outcome: { result: T } | { duplicate: DuplicateError }, durable: () => Promise<void>) => Promise<R>,
  ): Promise<R> =>
    callLater(() => {
      let result: T;
      let changed: number;
      let committed: number;
      let all: number;
      try {
        const before = changes();
        cheap = 0;
        result = fn();
        committed = changes();
        all = committed - before;
        changed = all - cheap;
      } catch (error) {
        writeFailed(error);
        const mapped = mapSqliteError(error);
        // A write on the failed or held (query-only) connection: refused with the failure's own words.
        const refused = refusal();
        if (refused !== undefined && mapped instanceof StoreUnavailableError) return Promise.reject(refused);
        // An insert of a spend that another caller made first: lost, like a write that changed no row.
        if (lost && mapped instanceof DuplicateError) return lost({ duplicate: mapped }, wal.durableLater());
        return Promise.reject(mapped);
      }
      if (all > 0) {
        full = false;
        told(committed);
      }
      return lost && all === 0 ? lost({ result }, wal.durableLater()) : won(result, changed, committed);
    });
  const synced = <T>(result: T, changed: number): Promise<T> => (changed > 0 ? wal.sync().then(() => result) : Promise.resolve(result));
  // This connection's changes are counted in order: a count at least `committed` as an fsync
  // starts means that fsync started after this commit.
  const deferred = <T>(result: T, _changed: number, committed: number) => Promise.resolve({ result, durable: () => wal.syncedThrough(committed) });
  // spend()'s loser waits for what it read to be on disk before it answers.
  const onDisk = <T>(outcome: { result: T } | { duplicate: DuplicateError }, durable: () => Promise<void>) =>
    durable().then(() => ("duplicate" in outcome ? Promise.reject(outcome.duplicate) : outcome.result));
  // deferredSpend()'s loser answers at once, with that wait as its `durable` (its caller's later
  // write, an audit event, makes an fsync that covers what the loser read).
  const later = <T>(outcome: { result: T } | { duplicate: DuplicateError }, durable: () => Promise<void>) => {
    if (!("duplicate" in outcome)) return Promise.resolve({ result: outcome.result, durable });
    return Promise.reject(withDurable(outcome.duplicate, durable));
  };
  return {
    call: <T>(fn: () => T): Promise<T> => run(fn, synced),
    spend: <T>(fn: () => T): Promise<T> => run(fn, synced, onDisk),
    deferred: <T>(fn: () => T): Promise<{ result: T; durable: () => Promise<void> }> => run(fn, deferred),
    deferredSpend: <T>(fn: () => T): Promise<{ result: T; durable: () => Promise<void> }> => run(fn, deferred, later),
    cheaply<T>(write: () => T): T {
      const before = changes();
      try {
        return write();
      } finally {
        const after = changes();
        cheap += after - before;
        // Committed, unless a transaction around it is still open (its call tells when it ends).
        if (after !== before && !db.inTransaction) told(after);
      }
    },
    synced: () => {
      // Writes made outside call() (an audit batch) are told here, as they ask for their fsync.
      if (db.open && !db.inTransaction) told(changes());
      return wal.sync();
    },
    syncNow: () => wal.syncNow(),
    close: () => wal.close(),
    failure: () => wal.failure,
    refusal,
    hold(refusal) {
      held = refusal;
      if (db.open && wal.failure === undefined) db.pragma(`query_only = ${refusal === undefined ? "OFF" : "ON"}`);
    },
    full: () => full,
    notFull: () => void (full = false),
    writeFailed,
    fill: () => void (full = true),
    fail: (message) => void wal.fail(new StoreUnavailableError(message)),
  };
}

/**
 * fsyncs of the WAL file, grouped: a sync asked for while one runs is made once that one ends,
 * and serves everyone who asked meanwhile. After one fails, none is made or acknowledged again.
 */
class WalSync {
  private fd: number | undefined;
  private running: Promise<void> | undefined;
  private next: Promise<void> | undefined;
  private closed = false;
  /** Set for good by the first failed fsync (or by fail()). */
  failure: StoreUnavailableError | undefined;
  /** Rows changed by this connection since it opened: a call that moved it committed something. */
  readonly changes: () => number;
  /** Moves whenever another connection (another process on the file) commits. */
  private readonly dataVersion: () => number;
  /** The commits the fsync under way covers (commitsSoFar() as it started). */
  private runningCovers: string | undefined;
  /** The commits the last fsync that succeeded covers: on disk. */
  private durableCovers: string | undefined;
  /** changes() as the fsync under way started, and as the last one that succeeded started. */
  private runningChanges = -1;
  private durableChanges = -1;
  /** fsyncs started so far (the one under way, if any, is the last), and the number of the last that succeeded. */
  private started = 0;
  private succeeded = 0;

  constructor(
    private readonly db: Database.Database,
    private readonly fsync: NonNullable<SqliteCallsOptions["fsync"]>,
    private readonly failed: NonNullable<SqliteCallsOptions["failed"]>,
  ) {
    const totalChanges = db.prepare("SELECT total_changes()").pluck();
    const dataVersion = db.prepare("PRAGMA data_version").pluck();
    this.changes = () => totalChanges.get() as number;
    this.dataVersion = () => dataVersion.get() as number;
  }

  /** What has been committed to the database so far, by this connection and by others. */
  private commitsSoFar(): string {
    return `${this.changes()}:${this.dataVersion()}`;
  }

  /**
   * Resolves once every commit made so far (by any connection) is on disk: at once when none
   * was made since the last fsync that succeeded started, after the fsync under way when it
   * started after them, else after the next one.
   */
  durable(): Promise<void> {
    return this.durableLater()();
  }

  /**
   * durable() as a wait made later: the function returned resolves once every commit made so far
   * (by any connection) is on disk, whatever is committed between now and its call. It needs an
   * fsync that started after those commits: none when the last one that succeeded did (nothing
   * was committed since it started), the one under way when it did, else the next one to start,
   * which may be the fsync of the caller's own later write: a loser of a spend that records its
   * audit event before it waits for this waits for that event's fsync only.
   */
  durableLater(): () => Promise<void> {
    if (this.db.memory) return () => Promise.resolve();
    const now = this.commitsSoFar();
    if (now === this.durableCovers) return () => Promise.resolve();
    // The fsync under way is number `started`; the next one to start will be `started + 1`.
    const after = this.running && this.runningCovers === now ? this.started - 1 : this.started;
    return () => this.syncedAfter(after);
  }

  /** Resolves once an fsync numbered above `n` has succeeded: the one under way, or the next. */
  private syncedAfter(n: number): Promise<void> {
    if (this.succeeded > n) return Promise.resolve();
    if (this.failure) return Promise.reject(this.failure);
    if (this.running && this.started > n) return this.running;
    return this.sync();
  }

  /**
   * Resolves once an fsync that started when changes() was at least `committed` has returned
   * (this connection's commits up to that count, and every commit before them, are on disk): at
   * once when the last one that succeeded did, after the one under way when it does, else after
   * the next.
   */
  syncedThrough(committed: number): Promise<void> {
    if (this.db.memory) return Promise.resolve();
    if (this.durableChanges >= committed) return Promise.resolve();
    if (this.failure) return Promise.reject(this.failure);
    if (this.running && this.runningChanges >= committed) return this.running;
    return this.sync();
  }

  sync(): Promise<void> {
    if (this.db.memory) return Promise.resolve();
    if (this.failure) return Promise.reject(this.failure);
    if (this.next) return this.next;
    if (!this.running) return this.start();
    const after = () => {
      this.next = undefined;
      return this.start();
    };
    return (this.next = this.running.then(after, after));
  }

  syncNow(): void {
    if (!this.db.memory) fsyncSync(this.descriptor());
  }

  async close(): Promise<void> {
    // Until no fsync runs or waits (one asked for meanwhile runs on the descriptor too).
    for (let pending = this.next ?? this.running; pending; pending = this.next ?? this.running) await pending.catch(() => {});
    this.closed = true;
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }

  /**
   * Fails the connection for good: every write from now on is refused with `failure` (made
   * query-only, SQLite refuses it before it changes anything; a call maps that to `failure`),
   * and no fsync resolves again. True when it was not failed before.
   */
  fail(failure: StoreUnavailableError): boolean {
    if (this.failure) return false;
    this.failure = failure;
    // Between statements (this runs from a callback), so no transaction of this connection is open.
    if (this.db.open) this.db.pragma("query_only = ON");
    return true;
  }

  private start(): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    let fd: number;
    try {
      if (this.closed) throw new Error("closed");
      fd = this.descriptor();
    } catch (cause) {
      return Promise.reject(new StoreUnavailableError("embedded store is closed", { cause }));
    }
    // (A sync asked for before the database closed may start after it: it covers nothing known.)
    const covers = this.db.open ? this.commitsSoFar() : undefined;
    const coversChanges = this.db.open ? this.changes() : -1;
    this.runningCovers = covers;
    this.runningChanges = coversChanges;
    const number = ++this.started;
    const running: Promise<void> = new Promise((resolve, reject) => {
      this.fsync(fd, (error) => {
        if (this.running === running) this.running = undefined;
        if (!error && !this.failure && covers !== undefined) {
          this.durableCovers = covers;
          this.durableChanges = coversChanges;
          this.succeeded = number;
        }
        const code = error ? (error.code ?? "error") : undefined;
        const first = code !== undefined && this.fail(new StoreUnavailableError(`embedded store could not sync its log (${code}); it refuses writes until restarted`, { cause: error }));
        // Failed meanwhile (told by another process): this fsync acknowledges nothing either.
        if (this.failure) reject(this.failure);
        else resolve();
        if (first) this.failed(this.failure!);
      });
    });
    this.running = running;
    return running;
  }

  /**
   * The WAL file, opened once. While this connection is open SQLite keeps it (it removes the WAL
   * only when the last connection closes), and resets it in place after a checkpoint, so one
   * descriptor serves the connection's life; fsync is per file, so it also syncs what other
   * processes on the same database committed.
   */
  private descriptor(): number {
    this.fd ??= openSync(`${this.db.name}-wal`, "r");
    return this.fd;
  }
}
