import type { NewUser, UserRecord, UserStore } from "../ports.js";
import { fromDoc, fromDocOrNull, toDoc, type MongoContext, type StoredDoc } from "./mongo-context.js";

export const USERS = "users";
const ID = "id";

export function mongoUsers(ctx: MongoContext): UserStore {
  const users = ctx.db.collection<StoredDoc>(USERS);
  return {
    create: (user: NewUser) =>
      ctx.run(ID, async () => {
        const record: UserRecord = {
          ...user,
          emails: [...user.emails],
          active: true,
          passwordChangedAt: user.createdAt,
          version: 0,
        };
        await users.insertOne(toDoc(record, ID));
        return fromDoc<UserRecord>(toDoc(record, ID), ID);
      }),
    findById: (id) => ctx.run(ID, async () => fromDocOrNull<UserRecord>(await users.findOne({ _id: id }), ID)),
    findByLogin: (login) => ctx.run(ID, async () => fromDocOrNull<UserRecord>(await users.findOne({ login }), ID)),
    updatePasswordHash: (id, passwordHash, at) =>
      ctx.run(ID, async () =>
        fromDocOrNull<UserRecord>(
          await users.findOneAndUpdate(
            { _id: id },
            { $set: { passwordHash, passwordChangedAt: at }, $inc: { version: 1 } },
            { returnDocument: "after" },
          ),
          ID,
        ),
      ),
    rehashPassword: (id, expectedHash, newHash) =>
      ctx.run(ID, async () => {
        const result = await users.updateOne(
          { _id: id, passwordHash: expectedHash },
          { $set: { passwordHash: newHash }, $inc: { version: 1 } },
        );
        return result.matchedCount === 1;
      }),
    setLastLogin: (id, at) =>
      ctx.run(ID, async () => {
        const result = await users.updateOne({ _id: id, active: true }, { $set: { lastLoginAt: at } });
        return result.matchedCount === 1 ? new Date(at.getTime()) : null;
      }),
    deactivate: (id, at) =>
      ctx.run(ID, async () => {
        const result = await users.updateOne(
          { _id: id, active: true },
          { $set: { active: false, deactivatedAt: at }, $inc: { version: 1 } },
        );
        return result.matchedCount === 1;
      }),
  };
}
