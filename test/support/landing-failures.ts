// Preloaded (node --import) into a cluster's workers on the embedded store: LANDING_FAILURES lists
// workers (by number, comma-separated; worker 1 is the first, which has no TESSERA_WORKER_ID)
// whose revocations of API tokens and signing keys are written and then answered with an error,
// as a store whose answer was lost after the write landed would: the UPDATE runs and commits, then
// the call throws StoreUnavailableError (503 STORE_UNAVAILABLE). LANDING_ROTATIONS lists workers
// whose key rotations that retire a key (not a start's first promotion) are so answered: the
// rotation's transaction commits, then the call throws.
import Database from "better-sqlite3";
import { StoreUnavailableError } from "../../src/store/ports/errors.js";

const self = process.env.TESSERA_WORKER_ID ?? "1";
const listed = (name: string) => (process.env[name] ?? "").split(",").includes(self);
/** The revocations' statements (sqlite-api-tokens.ts, sqlite-signing-keys.ts) and the method each is run with. */
const revocations: Array<[prefix: string, method: "all" | "run"]> = [
  ["UPDATE api_tokens SET revoked_at", "all"],
  ["UPDATE signing_keys SET revoked_at", "run"],
];
/** A rotation's retirement of the key that signed (sqlite-signing-keys.ts), run in its transaction. */
const retirement = "UPDATE signing_keys SET retired_at";

const prepare = Database.prototype.prepare;
/** Replaces `statement[method]` with `around`, given the original. */
function around(statement: Database.Statement, method: "all" | "run", wrap: (write: (...params: unknown[]) => unknown) => (...params: unknown[]) => unknown): void {
  const write = (statement[method] as (...params: unknown[]) => unknown).bind(statement);
  (statement as unknown as Record<string, unknown>)[method] = wrap(write);
}

if (listed("LANDING_FAILURES")) {
  Database.prototype.prepare = function (this: Database.Database, source: string) {
    const statement = prepare.call(this, source) as Database.Statement;
    const method = revocations.find(([prefix]) => source.startsWith(prefix))?.[1];
    if (method === undefined) return statement;
    around(statement, method, (write) => (...params) => {
      write(...params);
      throw new StoreUnavailableError("store unavailable");
    });
    return statement;
  } as typeof Database.prototype.prepare;
}

if (listed("LANDING_ROTATIONS")) {
  // Set by a retirement run in the transaction under way; the transaction throws once committed.
  let retired = false;
  const prepareBefore = Database.prototype.prepare;
  Database.prototype.prepare = function (this: Database.Database, source: string) {
    const statement = prepareBefore.call(this, source) as Database.Statement;
    if (source.startsWith(retirement)) {
      around(statement, "run", (write) => (...params) => {
        retired = true;
        return write(...params);
      });
    }
    return statement;
  } as typeof Database.prototype.prepare;
  const transaction = Database.prototype.transaction;
  Database.prototype.transaction = function (this: Database.Database, fn: (...args: any[]) => unknown) {
    const made = transaction.call(this, fn) as unknown as Record<"deferred" | "immediate" | "exclusive", (...args: unknown[]) => unknown> & ((...args: unknown[]) => unknown);
    const landing = (run: (...args: unknown[]) => unknown) => (...args: unknown[]) => {
      retired = false;
      const result = run(...args);
      if (!retired) return result;
      retired = false;
      throw new StoreUnavailableError("store unavailable");
    };
    const wrapped = landing(made);
    for (const variant of ["deferred", "immediate", "exclusive"] as const) Object.defineProperty(wrapped, variant, { value: landing(made[variant]) });
    return wrapped;
  } as typeof Database.prototype.transaction;
}
