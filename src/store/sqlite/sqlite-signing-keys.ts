import type Database from "better-sqlite3";
import { DuplicateError, retiredBy, type KeyPromotion, type NewSigningKey, type SigningKeyRecord, type SigningKeyStore } from "../ports.js";
import { sqliteCalls } from "./sqlite-durability.js";
import { mapSqliteError } from "./sqlite-errors.js";
import { dateIfPresent, fromMs, toMs } from "./sqlite-values.js";

interface SigningKeyRow {
  kid: string;
  generation: number;
  alg: string;
  private_jwk: string;
  public_jwk: string;
  created_at: number;
  activated_at: number;
  retired_at: number | null;
  not_after: number | null;
  revoked_at: number | null;
}

function toRecord(row: SigningKeyRow): SigningKeyRecord {
  const key: SigningKeyRecord = {
    kid: row.kid,
    alg: row.alg,
    privateJwk: row.private_jwk,
    publicJwk: row.public_jwk,
    generation: row.generation,
    createdAt: fromMs(row.created_at),
    activatedAt: fromMs(row.activated_at),
  };
  dateIfPresent(key, "retiredAt", row.retired_at);
  dateIfPresent(key, "notAfter", row.not_after);
  dateIfPresent(key, "revokedAt", row.revoked_at);
  return key;
}

export function sqliteSigningKeys(db: Database.Database): SigningKeyStore {
  const { call, spend } = sqliteCalls(db);
  const list = db.prepare("SELECT * FROM signing_keys ORDER BY generation ASC");
  const insert = db.prepare(`INSERT INTO signing_keys
    (kid, generation, alg, private_jwk, public_jwk, created_at, activated_at)
    VALUES (@kid, @generation, @alg, @privateJwk, @publicJwk, @createdAt, @activatedAt)`);
  const retire = db.prepare("UPDATE signing_keys SET retired_at = ?, not_after = ? WHERE kid = ? AND retired_at IS NULL");
  // The retired key of a rotation: its times replace an earlier rotation's (see KeyPromotion).
  const retireAgain = db.prepare("UPDATE signing_keys SET retired_at = ?, not_after = ? WHERE kid = ?");
  const promote = db.prepare("UPDATE signing_keys SET activated_at = ? WHERE kid = ?");
  const revoke = db.prepare("UPDATE signing_keys SET revoked_at = ? WHERE kid = ? AND revoked_at IS NULL");
  const reseal = db.prepare("UPDATE signing_keys SET private_jwk = ? WHERE kid = ? AND private_jwk = ?");
  // A revoked one only once past its revocation too (see the port).
  const deleteExpired = db.prepare(
    "DELETE FROM signing_keys WHERE retired_at IS NOT NULL AND not_after IS NOT NULL AND not_after < ? AND (revoked_at IS NULL OR revoked_at < ?)",
  );
  // Never the highest generation: the next key is published above it.
  const deleteRevoked = db.prepare(
    `DELETE FROM signing_keys WHERE retired_at IS NULL AND revoked_at IS NOT NULL AND revoked_at < ?
      AND generation < (SELECT MAX(generation) FROM signing_keys)`,
  );
  const deleteBoth = db.transaction(
    (before: number, revokedBefore: number) => deleteExpired.run(before, revokedBefore).changes + deleteRevoked.run(revokedBefore).changes,
  );

  // A unique clash on generation or kid means another instance got there first.
  const tryInsert = (key: NewSigningKey): boolean => {
    try {
      insert.run({
        kid: key.kid,
        generation: key.generation,
        alg: key.alg,
        privateJwk: key.privateJwk,
        publicJwk: key.publicJwk,
        createdAt: toMs(key.createdAt),
        activatedAt: toMs(key.activatedAt),
      });
      return true;
    } catch (error) {
      if (mapSqliteError(error) instanceof DuplicateError) return false;
      throw error;
    }
  };
  // One transaction: the new next key, the promotion and the retirement land together.
  const rotate = db.transaction((next: NewSigningKey, change: KeyPromotion): boolean => {
    if (!tryInsert(next)) return false;
    promote.run(toMs(change.promote.activatedAt), change.promote.kid);
    for (const kid of retiredBy(change)) {
      (kid === change.retire!.kid ? retireAgain : retire).run(toMs(change.retire!.retiredAt), toMs(change.retire!.notAfter), kid);
    }
    return true;
  });

  return {
    list: () => call(() => (list.all() as SigningKeyRow[]).map(toRecord)),
    insertGeneration: (key) => call(() => tryInsert(key)),
    rotate: (next, change) => call(() => rotate.immediate(next, change)),
    revoke: (kid, at) => spend(() => revoke.run(toMs(at), kid).changes === 1),
    reseal: (kid, from, to) => call(() => (reseal.run(to, kid, from).changes === 1 ? "resealed" : "unchanged")),
    deleteExpired: (before, revokedBefore) => call(() => deleteBoth.immediate(toMs(before), toMs(revokedBefore))),
  };
}
