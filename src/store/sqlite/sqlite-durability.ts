import type Database from "better-sqlite3";

/**
 * Wraps writes whose loss on power failure costs little, to commit them without an fsync: the
 * connection runs at synchronous=FULL (see openSqliteStore), and these run at NORMAL, which in
 * WAL mode still keeps every commit across a crash or kill of the process (the WAL is in the OS
 * page cache, and the next FULL commit syncs it with its own) but may lose the last ones on power
 * loss or an OS crash.
 *
 * Used for a new session, which the login's next write (its refresh token) makes durable, and
 * for a refresh token's spend and the session's move to the new access token, which the
 * refresh's last write (its child refresh token, committed with an fsync) makes durable before
 * the answer: one fsync per refresh instead of three. WAL recovery keeps a prefix of the
 * commits, so a power cut loses either all three or the last of them, as if the answer had been
 * lost on its way (the same refresh, retried, answers the same pair).
 *
 * And for login-attempt counters and remembered logins, written two or three times by every
 * login and sign-up, failed and refused ones included: an fsync holds the event loop for a
 * quarter of a millisecond or more, which is what a flood of logins buys. Losing them to a power
 * cut gives a guesser back at most the attempts of the last moments, once per power cut.
 */
export function unsynced(db: Database.Database): <T>(write: () => T) => T {
  // exec, not a prepared statement: SQLite applies this pragma when the statement is compiled,
  // so running a statement prepared earlier does not reliably apply it again.
  return (write) => {
    // Inside a transaction (SQLite refuses the pragma there), its commit decides.
    if (db.inTransaction) return write();
    db.exec("PRAGMA synchronous = NORMAL");
    try {
      return write();
    } finally {
      db.exec("PRAGMA synchronous = FULL");
    }
  };
}
