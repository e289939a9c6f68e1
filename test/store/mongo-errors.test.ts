// Which driver errors mean "the database cannot answer right now" (StoreUnavailableError, so
// UNAVAILABLE with Retry-After) and which stay errors of their own (INTERNAL). The server errors
// are the shapes FerretDB 1.24 (PostgreSQL backend) answered, copied from its replies.
import assert from "node:assert/strict";
import { loadMongoDriver } from "../../src/store/mongo/mongo-driver.js";
import { isUnavailable, mapMongoError } from "../../src/store/mongo/mongo-errors.js";
import { StoreUnavailableError } from "../../src/store/ports.js";

/** A MongoServerError as the driver makes it from a server's error reply. */
async function serverError(reply: { errmsg: string; code: number; codeName: string }) {
  const { MongoServerError } = await loadMongoDriver();
  return new MongoServerError({ ok: 0, ...reply });
}

// FerretDB's reply to a find while PostgreSQL refused new connections (max_connections reached:
// several FerretDB instances, each with a pool of up to 50, on one PostgreSQL). Seen under a
// kill/restart of FerretDB with the mixed load, where the restarted server opens a new pool.
const tooManyClients = {
  errmsg:
    "[msg_find.go:344 handler.handleMaxTimeMSError] [collection.go:109 postgresql.(*collection).Query] failed to connect to `user=postgres database=tessera_fdb_abc40eb6d0`:\n" +
    "\t127.0.0.1:5432 (127.0.0.1): server error: FATAL: sorry, too many clients already (SQLSTATE 53300)\n" +
    "\t127.0.0.1:5432 (127.0.0.1): server error: FATAL: sorry, too many clients already (SQLSTATE 53300)",
  code: 1,
  codeName: "InternalError",
};

describe("mongo errors: FerretDB's InternalError", () => {
  it("PostgreSQL refusing connections (SQLSTATE 53300, too many clients) is StoreUnavailableError", async () => {
    const error = await serverError(tooManyClients);
    assert.equal(isUnavailable(error), true);
    const mapped = mapMongoError(error, "id");
    assert.ok(mapped instanceof StoreUnavailableError, `expected StoreUnavailableError, got ${String(mapped)}`);
    assert.equal((mapped as StoreUnavailableError).cause, error);
  });

  it("PostgreSQL starting up (SQLSTATE 57P03) is StoreUnavailableError", async () => {
    const error = await serverError({
      ...tooManyClients,
      errmsg: tooManyClients.errmsg.replaceAll("sorry, too many clients already (SQLSTATE 53300)", "the database system is starting up (SQLSTATE 57P03)"),
    });
    assert.ok(mapMongoError(error, "id") instanceof StoreUnavailableError);
  });

  // FerretDB up, its PostgreSQL down or cut off (a relay between them reset and closed).
  for (const [what, errmsg] of [
    [
      "PostgreSQL unreachable (pgx's failed to connect, a dial error)",
      "[msg_insert.go:168 handler.(*Handler).MsgInsert] failed to connect to `user=postgres database=tessera_fdb_fddbde17ff`:\n" +
        "\t127.0.0.1:39395 (127.0.0.1): dial error: dial tcp 127.0.0.1:39395: connect: connection refused\n" +
        "\t127.0.0.1:39395 (127.0.0.1): dial error: dial tcp 127.0.0.1:39395: connect: connection refused",
    ],
    [
      "the connection to PostgreSQL reset under a query",
      "[msg_find.go:344 handler.handleMaxTimeMSError] [values.go:74 iterator.ConsumeValuesN[...]] [projection_iterator.go:60 common.(*projectionIterator).Next] " +
        "[filter_iterator.go:52 common.(*filterIterator).Next] [query_iterator.go:92 postgresql.(*queryIterator).Next] read tcp 127.0.0.1:37840->127.0.0.1:39395: read: connection reset by peer",
    ],
    ["the connection to PostgreSQL ended under a query", "[msg_find.go:344 handler.handleMaxTimeMSError] [collection.go:109 postgresql.(*collection).Query] unexpected EOF"],
    [
      "a write to PostgreSQL on a reset connection",
      "[msg_find.go:344 handler.handleMaxTimeMSError] [collection.go:109 postgresql.(*collection).Query] write failed: write tcp 127.0.0.1:37926->127.0.0.1:39395: write: connection reset by peer",
    ],
    ["PostgreSQL a standby (SQLSTATE 25006, read-only transaction)", "[msg_insert.go:168 handler.(*Handler).MsgInsert] [collection.go:123 postgresql.(*collection).InsertAll] ERROR: cannot execute INSERT in a read-only transaction (SQLSTATE 25006)"],
    ["a deadlock in PostgreSQL (SQLSTATE 40P01)", "[msg_update.go:130 handler.(*Handler).MsgUpdate] ERROR: deadlock detected (SQLSTATE 40P01)"],
    ["PostgreSQL ending its connections (SQLSTATE 57P01)", "[msg_find.go:344 handler.handleMaxTimeMSError] [collection.go:109 postgresql.(*collection).Query] FATAL: terminating connection due to administrator command (SQLSTATE 57P01)"],
  ]) {
    it(`${what} is StoreUnavailableError`, async () => {
      const error = await serverError({ errmsg: errmsg!, code: 1, codeName: "InternalError" });
      assert.ok(mapMongoError(error, "id") instanceof StoreUnavailableError);
    });
  }

  // pgx's "failed to connect to" also heads a connection PostgreSQL refused for the service's own
  // settings: a database that does not exist (FerretDB 1.24.2's reply, copied), a password or role
  // refused. Those are not an outage that passes by itself: the SQLSTATE decides, not the words.
  it("a connection PostgreSQL refuses for the settings (SQLSTATE 3D000, 28P01) stays itself", async () => {
    for (const errmsg of [
      "[msg_insert.go:168 handler.(*Handler).MsgInsert] [collection.go:123 postgresql.(*collection).InsertAll] [registry.go:466 metadata.(*Registry).CollectionCreate] " +
        "[registry.go:137 metadata.(*Registry).getPool] [pool.go:129 pool.(*Pool).Get] [opendb.go:95 pool.openDB] [opendb.go:110 pool.checkConnection] " +
        'failed to connect to `user=postgres database=no_such_db`: 127.0.0.1:5432 (127.0.0.1): server error: FATAL: database "no_such_db" does not exist (SQLSTATE 3D000)',
      "[msg_find.go:344 handler.handleMaxTimeMSError] [collection.go:109 postgresql.(*collection).Query] failed to connect to `user=tessera database=tessera`:\n" +
        '\t127.0.0.1:5432 (127.0.0.1): server error: FATAL: password authentication failed for user "tessera" (SQLSTATE 28P01)',
    ]) {
      const error = await serverError({ errmsg, code: 1, codeName: "InternalError" });
      assert.equal(isUnavailable(error), false, errmsg);
    }
  });

  it("any other InternalError stays itself (a PostgreSQL error of the request, or none)", async () => {
    for (const errmsg of [
      "[collection.go:120 postgresql.(*collection).InsertAll] ERROR: syntax error at or near \"x\" (SQLSTATE 42601)",
      "[msg_find.go:344 handler.handleMaxTimeMSError] unexpected nil document",
      // A network word inside a value quoted back, not FerretDB's own error.
      "[msg_insert.go:168 handler.(*Handler).MsgInsert] invalid key: \"connection reset by peer\"",
    ]) {
      const error = await serverError({ errmsg, code: 1, codeName: "InternalError" });
      assert.equal(isUnavailable(error), false, errmsg);
      assert.equal(mapMongoError(error, "id"), error, errmsg);
    }
  });

  it("a SQLSTATE in another code's message is not read as PostgreSQL's (code 2, BadValue)", async () => {
    const error = await serverError({ errmsg: "bad value (SQLSTATE 53300)", code: 2, codeName: "BadValue" });
    assert.equal(isUnavailable(error), false);
  });
});

describe("mongo errors: a server that cannot answer now (replica sets)", () => {
  it("ReadConcernMajorityNotAvailableYet (134) and WriteConcernFailed (64) are StoreUnavailableError", async () => {
    for (const [code, codeName] of [
      [134, "ReadConcernMajorityNotAvailableYet"],
      [64, "WriteConcernFailed"],
    ] as const) {
      const error = await serverError({ errmsg: codeName, code, codeName });
      assert.ok(mapMongoError(error, "id") instanceof StoreUnavailableError, codeName);
    }
  });

  it("a write concern error the server reports for a failover is StoreUnavailableError", async () => {
    const { MongoWriteConcernError } = await loadMongoDriver();
    const error = new MongoWriteConcernError({ writeConcernError: { code: 64, errmsg: "waiting for replication timed out", errInfo: { wtimeout: true } }, ok: 1 } as never);
    assert.ok(mapMongoError(error, "id") instanceof StoreUnavailableError);
  });

  it("an error labelled SystemOverloadedError or RetryableWriteError is StoreUnavailableError; an unlabelled one of the same code is not", async () => {
    for (const label of ["SystemOverloadedError", "RetryableWriteError", "RetryableError"]) {
      const error = await serverError({ errmsg: "overloaded", code: 462, codeName: "IngressRequestRateLimitExceeded" });
      assert.equal(isUnavailable(error), false, "unlabelled");
      error.addErrorLabel(label);
      assert.ok(mapMongoError(error, "id") instanceof StoreUnavailableError, label);
    }
  });
});
