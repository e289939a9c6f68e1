import type { NewUser, UserRecord, UserStanding, UserStore } from "../ports.js";
import { fromDoc, toDoc, type MongoContext, type StoredDoc } from "./mongo-context.js";
import { insertNamingDuplicate, insertNextVersion, isDuplicateKey, upsertOne } from "./mongo-inserts.js";

export const USERS = "users";
export const USER_PASSWORDS = "user_passwords";
export const USER_LAST_LOGINS = "user_last_logins";
const ID = "id";
const MAX_TRIES = 20;
/**
 * Keyless accounts the backfill reads in one query (and whose last logins kept apart it reads in
 * one more): small enough for either to answer well within the store's bound.
 */
const BACKFILL_PAGE = 500;
/**
 * Password generations kept per user: each change deletes those this many generations older. Only
 * the latest is ever read; an older one matters only to a writer that read it and has not
 * inserted its successor yet, which would have to stall while this many changes of the same
 * user were written to be confused (its insert would succeed below the latest and change
 * nothing). Without it, every password change (and rehash) left a document, and an old password
 * hash, forever.
 */
export const PASSWORD_GENERATIONS_KEPT = 16;

// Layout (see mongo-marks.ts for why nothing that matters is updated in place):
// - users: the identity, written once (unique login and loginKey), plus lastLoginAt ($max, so
//   an earlier login written last never replaces a later one on MongoDB; FerretDB applies it to
//   its own unlocked read, so of two at the same moment the earlier may still stay, a loss of
//   the time between them), and the loginKey an account
//   stored before login keys gets once, at start-up (the unique, sparse loginKey index decides a
//   clash). FerretDB writes an updated document back whole: a lastLoginAt update that read the
//   document before the backfill's $set of loginKey and wrote it back after took the key away
//   again. So lastLoginAt is updated in place only in a document that has its key (the filter
//   says so: what is written back holds the key); an account without one keeps its last login
//   in user_last_logins {_id: userId, lastLoginAt}, read only for such an account and carried
//   into the document by the backfill once the key is set (its user_last_logins document then
//   deleted, if it still holds what was carried). A login that found the account keyless and
//   kept its time apart only after the backfill's carry read carries itself (it sees the key).
//   The backfill is then the only writer of a keyless document.
// - user_passwords: password generations {_id: "<userId>:<n>", n >= 1}; generation 0 is the hash
//   in `users`. Changing the hash inserts generation n+1: the unique _id is the CAS. The latest
//   PASSWORD_GENERATIONS_KEPT are kept.
// - mark "user-deactivated:<id>".
// version = latest generation + 1 if deactivated. credentialEpoch = the latest generation's
// `epoch` (a real change carries its predecessor's + 1, a rehash the same; a generation written
// before epochs existed counts as its n) + 1 if deactivated: both parts only ever grow (but for
// a deactivated user's, once a password change that raced the deactivation withdraws its
// generation: updatePasswordHash), and each moves in the one insert that makes the change.
interface PasswordDoc extends StoredDoc {
  userId: string;
  n: number;
  passwordHash: string;
  passwordChangedAt: Date;
  epoch?: number;
}

/** What the backfill reads of an account without a login key (or, re-keying, of any account). */
interface KeylessDoc {
  _id: string;
  login: string;
  createdAt: Date;
  loginKey?: string;
}

/**
 * Marks "login-key-function:<n>": every account was re-keyed for key function n (see the
 * backfill). A re-key whose new keys a login write on FerretDB may have undone is checked this
 * many times before it gives up until the next start.
 */
const KEY_FUNCTION_MARK = "login-key-function:";
const REKEY_CHECKS = 3;

const epochOf = (password: PasswordDoc | null): number => (password ? (password.epoch ?? password.n) : 0);

const deactivatedMark = (id: string) => `user-deactivated:${id}`;

/**
 * What a credential check needs of `user` (read beside the credential: SessionStore.findWithUser,
 * UserTokenStore.findByHashWithUser), and nothing more: the check carries no password hash.
 */
export function standingOf(user: UserRecord | null): UserStanding | null {
  return user && { id: user.id, active: user.active, credentialEpoch: user.credentialEpoch, passwordChangedAt: user.passwordChangedAt };
}

export function mongoUsers(ctx: MongoContext): UserStore {
  const users = ctx.db.collection<StoredDoc>(USERS);
  const passwords = ctx.db.collection<PasswordDoc>(USER_PASSWORDS);

  const lastLogins = ctx.db.collection<StoredDoc>(USER_LAST_LOGINS);

  const latestPassword = (userId: string) => passwords.find({ userId }).sort({ n: -1 }).limit(1).next();
  /** The last login kept apart for an account without a login key (see above). */
  const lastLoginApart = async (userId: string): Promise<Date | undefined> =>
    ((await lastLogins.findOne({ _id: userId }))?.lastLoginAt as Date | undefined) ?? undefined;
  const later = (x: Date | undefined, y: Date | undefined) => (x === undefined || (y !== undefined && y.getTime() > x.getTime()) ? y : x);

  const assemble = (base: StoredDoc, password: PasswordDoc | null, deactivatedAt: Date | null): UserRecord => {
    const user = fromDoc<UserRecord>(base, ID);
    user.passwordChangedAt = base.createdAt as Date;
    user.version = 0;
    user.active = true;
    user.credentialEpoch = epochOf(password);
    if (password) {
      user.passwordHash = password.passwordHash;
      user.passwordChangedAt = password.passwordChangedAt;
      user.version = password.n;
    }
    if (deactivatedAt) {
      user.active = false;
      user.deactivatedAt = deactivatedAt;
      user.version += 1;
      user.credentialEpoch += 1;
    }
    return user;
  };

  const load = async (base: StoredDoc | null): Promise<UserRecord | null> => {
    if (!base) return null;
    const keyless = base.loginKey === undefined || base.loginKey === null;
    const [password, deactivatedAt, apart] = await Promise.all([
      latestPassword(base._id),
      ctx.marks.get(deactivatedMark(base._id)),
      keyless ? lastLoginApart(base._id) : undefined,
    ]);
    const lastLoginAt = later(base.lastLoginAt as Date | undefined, apart);
    return assemble(lastLoginAt === undefined ? base : { ...base, lastLoginAt }, password, deactivatedAt);
  };

  const findById = async (id: string) => load(await users.findOne({ _id: id }));
  /** An id no user has (ids are UUIDs). */
  const absentId = "absent-user";

  /**
   * Inserts the next password generation if `accept` agrees with the current hash and credential
   * epoch (before a deactivation's); a lost race is retried (`retry`) or gives up. `at` null keeps
   * the current passwordChangedAt (a rehash). Returns the generation inserted, or null.
   */
  const nextPassword = async (
    id: string,
    passwordHash: string,
    at: Date | null,
    accept: (currentHash: string, currentEpoch: number) => boolean,
    retry: boolean,
  ): Promise<PasswordDoc | null> => {
    const base = await users.findOne({ _id: id });
    if (!base) return null;
    const inserted = await insertNextVersion(passwords, {
      latest: () => latestPassword(id),
      next: (current) => {
        // Generation 0 is the hash in `users`.
        if (!accept(current?.passwordHash ?? (base.passwordHash as string), epochOf(current))) return null;
        return {
          userId: id,
          passwordHash,
          passwordChangedAt: at ?? current?.passwordChangedAt ?? (base.createdAt as Date),
          // A real change (at set) moves the epoch on; a rehash keeps it.
          epoch: epochOf(current) + (at ? 1 : 0),
        };
      },
      idOf: (n) => `${id}:${n}`,
      retry,
      maxTries: MAX_TRIES,
      what: "password update",
    });
    if (inserted !== null && inserted.n > PASSWORD_GENERATIONS_KEPT) {
      // The change is made: a failed prune must not report it failed (the next change prunes).
      await passwords.deleteMany({ userId: id, n: { $lte: inserted.n - PASSWORD_GENERATIONS_KEPT } }).catch(() => {});
    }
    return inserted;
  };

  return {
    create: (user: NewUser) =>
      ctx.run(ID, async () => {
        const doc = toDoc({ ...user, emails: [...user.emails] }, ID);
        await insertNamingDuplicate(users, doc, ID, "login");
        return assemble(doc, null, null);
      }),
    findById: (id) => ctx.run(ID, () => findById(id)),
    findByLogin: (login, loginKey) =>
      ctx.run(ID, async () => {
        // The exact spelling first, then the key (see the port).
        const found = await users.find({ $or: [{ login }, { loginKey }] }).limit(2).toArray();
        const base = found.find((doc) => doc.login === login) ?? found[0];
        if (base) return load(base);
        // A miss makes the same second round trip as a hit (password versions, deactivation
        // mark), so how long a login lookup takes does not tell whether the login exists.
        await Promise.all([latestPassword(absentId), ctx.marks.get(deactivatedMark(absentId))]);
        return null;
      }),
    backfillLoginKeys: async (keyOf, keyFunction) => {
      // Each step is its own store call, under the store's bound (a batch of the keyless
      // accounts read, one account's key, one page's carry read, one carried last login): the
      // whole backfill of a few thousand accounts takes longer than that bound, and as one call
      // it failed every start, each keying only some of them. The keyless accounts are read
      // first, all of them, without a sort, BACKFILL_PAGE a call: a sorted read (no index orders
      // them, and FerretDB sorts none in the database) reads every keyless account before it
      // answers, each page, which tens of thousands of them took past the bound. Then they are
      // keyed oldest first, (createdAt, _id), as SQLite keys them: of two look-alikes the older
      // gets the key.
      // With a key function not recorded yet (nor a newer one), every account is read so, once,
      // and those whose key is not keyOf(login) are re-keyed with the keyless ones.
      const rekey =
        keyFunction !== undefined &&
        !(await ctx.run(ID, () => ctx.marks.idsStartingWith(KEY_FUNCTION_MARK))).some((mark) => Number(mark.slice(KEY_FUNCTION_MARK.length)) >= keyFunction);
      const found = new Map<string, KeylessDoc>();
      const cursor = users
        .find(rekey ? {} : { loginKey: { $exists: false } })
        .project<KeylessDoc>({ login: 1, createdAt: 1, loginKey: 1 })
        .batchSize(BACKFILL_PAGE);
      try {
        for (;;) {
          const batch = await ctx.run(ID, async () => {
            const docs: KeylessDoc[] = [];
            while (docs.length < BACKFILL_PAGE) {
              const doc = await cursor.next();
              if (doc === null) break;
              docs.push(doc);
            }
            return docs;
          });
          for (const doc of batch) if (!rekey || doc.loginKey !== keyOf(doc.login)) found.set(doc._id, doc);
          if (batch.length < BACKFILL_PAGE) break;
        }
      } finally {
        await cursor.close().catch(() => {});
      }
      const order = (x: Date | string, y: Date | string) => (x < y ? -1 : x > y ? 1 : 0);
      const keyless = [...found.values()].sort((x, y) => order(x.createdAt, y.createdAt) || order(x._id, y._id));
      let filled = 0;
      const clashes: string[] = [];
      /** Gives `doc` its key: the number of documents changed, or null on a clash. */
      const keyAccount = (doc: KeylessDoc, loginKey: string) =>
        ctx.run(ID, async () => {
          if ((await users.countDocuments({ loginKey }, { limit: 1 })) === 0) {
            try {
              // Only while the account still has the key read (none: keyless). Another instance
              // backfilling at the same time writes the same value.
              const was = doc.loginKey === undefined ? { $exists: false } : doc.loginKey;
              return (await users.updateOne({ _id: doc._id, loginKey: was }, { $set: { loginKey } })).modifiedCount;
            } catch (error) {
              if (!isDuplicateKey(error)) throw error;
            }
          }
          // The key is taken: by a look-alike (a clash), or by this very account, keyed by
          // another instance backfilling at the same time since this page was read (none).
          return (await users.countDocuments({ _id: doc._id, loginKey }, { limit: 1 })) > 0 ? 0 : null;
        });
      // Accounts that had a key and were given their current one: see below.
      const rekeyed: KeylessDoc[] = [];
      for (let start = 0; start < keyless.length; start += BACKFILL_PAGE) {
        const page = keyless.slice(start, start + BACKFILL_PAGE);
        const keyed: string[] = [];
        for (const doc of page) {
          const modified = await keyAccount(doc, keyOf(doc.login));
          if (modified === null) {
            clashes.push(doc._id);
          } else {
            filled += modified;
            if (doc.loginKey === undefined) keyed.push(doc._id);
            else rekeyed.push(doc);
          }
        }
        // The last logins kept apart while these accounts had no key go into their documents,
        // now written in place (with the key in the filter) like any other account's.
        if (keyed.length === 0) continue;
        const apart = await ctx.run(ID, () => lastLogins.find({ _id: { $in: keyed } }).toArray());
        for (const login of apart) {
          await ctx.run(ID, () => users.updateOne({ _id: login._id, loginKey: { $exists: true } }, { $max: { lastLoginAt: login.lastLoginAt as Date } }));
        }
        // Carried: no longer read (the account has its key), so not kept. Only what was carried:
        // a login kept apart since then carries itself (setLastLogin).
        if (apart.length > 0) {
          await ctx.run(ID, () => lastLogins.deleteMany({ $or: apart.map((login) => ({ _id: login._id, lastLoginAt: login.lastLoginAt as Date })) }));
        }
      }
      // A keyed account's lastLoginAt is written in place, and FerretDB writes the document back
      // whole: a login's write beside the $set of the new key may have put the old key back. The
      // re-keyed accounts are read again once the pass is done, and one holding its old key is
      // re-keyed again; the key function is recorded only once none is left so (else the next
      // start re-keys).
      let unsettled = rekeyed;
      for (let check = 0; check < REKEY_CHECKS && unsettled.length > 0; check++) {
        const reverted: KeylessDoc[] = [];
        for (let start = 0; start < unsettled.length; start += BACKFILL_PAGE) {
          const page = unsettled.slice(start, start + BACKFILL_PAGE);
          const now = await ctx.run(ID, () =>
            users.find({ _id: { $in: page.map((doc) => doc._id) } }).project<{ _id: string; loginKey?: string }>({ loginKey: 1 }).toArray(),
          );
          const keyNow = new Map(now.map((doc) => [doc._id, doc.loginKey]));
          for (const doc of page) {
            if (keyNow.get(doc._id) !== doc.loginKey) continue;
            // A look-alike signed up meanwhile may hold the key now: a clash after all.
            if ((await keyAccount(doc, keyOf(doc.login))) === null) clashes.push(doc._id);
            else reverted.push(doc);
          }
        }
        unsettled = reverted;
      }
      if (rekey && unsettled.length === 0) await ctx.run(ID, () => ctx.marks.claim(`${KEY_FUNCTION_MARK}${keyFunction}`, new Date()));
      return { filled, clashes };
    },
    updatePasswordHash: (id, passwordHash, at, expectedEpoch) =>
      ctx.run(ID, async () => {
        // A deactivation moves the epoch on too (one more than its generation's).
        if (expectedEpoch !== undefined && (await ctx.marks.get(deactivatedMark(id)))) return null;
        const accept = (_hash: string, epoch: number) => expectedEpoch === undefined || epoch === expectedEpoch;
        const inserted = await nextPassword(id, passwordHash, at, accept, true);
        if (!inserted) return null;
        const user = await findById(id);
        // The insert compared the generations' epoch, not the deactivation's mark, which a
        // deactivation may have claimed since the read above; so the user is read after the
        // insert. A deactivation not found there came after it: the change was made first. One
        // found may have come first, where SQLite's conditional write refuses the change: the
        // generation is withdrawn (a delete, atomic) and the change refused as after the
        // deactivation, so that no password it set outlives the deactivation.
        if (expectedEpoch !== undefined && user && !user.active) {
          await passwords.deleteOne({ _id: inserted._id });
          return null;
        }
        return user;
      }),
    rehashPassword: (id, expectedHash, newHash) =>
      // No retry: losing the insert means the hash changed under us, so it is no longer expected.
      ctx.run(ID, async () => (await nextPassword(id, newHash, null, (current) => current === expectedHash, false)) !== null),
    setLastLogin: (id, at) =>
      ctx.run(ID, async () => {
        const user = await findById(id);
        if (!user?.active) return null;
        // In place only where the document has its key (what FerretDB writes back holds it);
        // an account without one keeps it apart, so the backfill's $set of the key is never
        // undone (see above).
        // $max: an earlier time is never written over a later one (two logins racing), but on
        // FerretDB, whose $max is applied to a read it does not lock (see the layout above).
        const { matchedCount } = await users.updateOne({ _id: id, loginKey: { $exists: true } }, { $max: { lastLoginAt: at } });
        if (matchedCount === 0) {
          // Two first logins at once: one inserts the document; the other then updates it. $max
          // (an insert takes its value): the later time stays whichever of two logins writes last.
          await upsertOne(lastLogins, { _id: id }, { $max: { lastLoginAt: at } });
          // The backfill may have keyed the account since the update above found it keyless,
          // and read what it carries before this was kept apart: this login then carries itself
          // (no longer read apart once the account has its key), and deletes what it kept apart
          // unless a later login has replaced it.
          const { matchedCount: keyed } = await users.updateOne({ _id: id, loginKey: { $exists: true } }, { $max: { lastLoginAt: at } });
          if (keyed > 0) await lastLogins.deleteOne({ _id: id, lastLoginAt: at });
        }
        return new Date(at.getTime());
      }),
    deactivate: (id, at) =>
      ctx.run(ID, async () => {
        if ((await users.countDocuments({ _id: id }, { limit: 1 })) === 0) return false;
        return ctx.marks.claim(deactivatedMark(id), at);
      }),
  };
}
