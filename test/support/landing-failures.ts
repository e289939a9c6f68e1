// Preloaded (node --import) into a cluster's workers on the embedded store: LANDING_FAILURES lists
// workers (by number, comma-separated; worker 1 is the first, which has no TESSERA_WORKER_ID)
// whose revocations of API tokens and signing keys are written and then answered with an error,
// as a store whose answer was lost after the write landed would: the UPDATE runs and commits, then
// the call throws StoreUnavailableError (503 STORE_UNAVAILABLE).
import Database from "better-sqlite3";
import { StoreUnavailableError } from "../../src/store/ports/errors.js";

const self = process.env.TESSERA_WORKER_ID ?? "1";
/** The revocations' statements (sqlite-api-tokens.ts, sqlite-signing-keys.ts) and the method each is run with. */
const revocations: Array<[prefix: string, method: "all" | "run"]> = [
  ["UPDATE api_tokens SET revoked_at", "all"],
  ["UPDATE signing_keys SET revoked_at", "run"],
];

if ((process.env.LANDING_FAILURES ?? "").split(",").includes(self)) {
  const prepare = Database.prototype.prepare;
  Database.prototype.prepare = function (this: Database.Database, source: string) {
    const statement = prepare.call(this, source) as Database.Statement;
    const method = revocations.find(([prefix]) => source.startsWith(prefix))?.[1];
    if (method === undefined) return statement;
    const write = statement[method] as (...params: unknown[]) => unknown;
    (statement as unknown as Record<string, unknown>)[method] = (...params: unknown[]) => {
      write.apply(statement, params);
      throw new StoreUnavailableError("store unavailable");
    };
    return statement;
  } as typeof Database.prototype.prepare;
}
