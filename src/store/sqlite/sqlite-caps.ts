import { CAP_BATCH } from "../ports.js";

/**
 * The rowids of a user's credentials past a cap, oldest first, for a statement that ends them
 * inside the creation's write transaction. Of the rows of `table` whose `user_id` is `@userId`,
 * which are still live (`live`, over the statement's parameters) and are not `@keep` (the
 * credential just created: the new one always stays, whatever its time), ordered newest first
 * by `created` then rowid (of one millisecond, the later insert is the newer), the newest
 * `@skip` (cap - 1) stay; of the others, the CAP_BATCH oldest. The boundary (the newest past the
 * cap) is found first, so that neither read goes through more than the cap and one batch of
 * rows, both by the index on (user_id, `created`) of schema version 16 (sqlite-store.test.ts
 * checks the plans).
 */
export function pastCapRowids(table: string, key: string, created: string, live: string): string {
  const ofUser = `user_id = @userId AND ${key} != @keep AND ${live}`;
  // No boundary (the cap not reached): the comparison is NULL, and no row is past it.
  return `SELECT rowid FROM ${table} WHERE ${ofUser}
    AND (${created}, rowid) <= (SELECT ${created} AS boundary_at, rowid FROM ${table} WHERE ${ofUser} ORDER BY ${created} DESC, rowid DESC LIMIT 1 OFFSET @skip)
    ORDER BY ${created}, rowid LIMIT ${CAP_BATCH}`;
}

/** The parameters of a pastCapRowids() statement. */
export function capParameters(userId: string, keep: string, cap: number, now: number): { userId: string; keep: string; skip: number; now: number } {
  return { userId, keep, skip: cap - 1, now };
}
