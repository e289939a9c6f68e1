// Store writes in doubt, made in-process: one that lands and is then answered with an error (its
// answer lost), and, on MongoDB, one held on its way to the database past the store's time bound
// (TESSERA_STORE_TIMEOUT_MS), which answers 503 while the write goes on and lands later.
import { Collection, type Document } from "mongodb";
import { StoreUnavailableError } from "../../src/store/ports/errors.js";
import { gate } from "../credentials/support.js";

/** Makes the next call of `target[method]` write as it would, then throw StoreUnavailableError. */
export function landsThenFails<T extends object>(target: T, method: keyof T & string): void {
  const methods = target as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
  const original = methods[method]!;
  methods[method] = async (...args: unknown[]) => {
    methods[method] = original;
    await original.apply(target, args);
    throw new StoreUnavailableError("MongoDB unavailable");
  };
}

/**
 * Once the next call of `target[method]` has answered (a credential stored, say), makes the next
 * call of `then[next]` after it write (or read) as it would, then throw StoreUnavailableError
 * (landsThenFails).
 */
export function landsThenFailsAfter<T extends object, U extends object>(target: T, method: keyof T & string, then: U, next: keyof U & string): void {
  const methods = target as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
  const original = methods[method]!;
  methods[method] = async (...args: unknown[]) => {
    methods[method] = original;
    const answer = await original.apply(target, args);
    landsThenFails(then, next);
    return answer;
  };
}

/**
 * On MongoDB (every store of this process), holds the next insert into `collection` whose `_id`
 * is a string beginning with `prefix` until `release()`; `reached` resolves once it is held,
 * `landed` once the database has acknowledged it.
 */
export function holdInsert(collection: string, prefix = ""): { reached: Promise<void>; landed: Promise<void>; release(): void } {
  const insertOne = Collection.prototype.insertOne;
  const held = gate();
  let landed!: () => void;
  const done = new Promise<void>((resolve) => (landed = resolve));
  Collection.prototype.insertOne = async function (this: Collection, ...args: Parameters<Collection["insertOne"]>) {
    const id = (args[0] as Document)._id;
    if (this.collectionName !== collection || typeof id !== "string" || !id.startsWith(prefix)) return insertOne.apply(this, args);
    Collection.prototype.insertOne = insertOne;
    await held.pass();
    const result = await insertOne.apply(this, args);
    landed();
    return result;
  } as Collection["insertOne"];
  return {
    reached: held.reached,
    landed: done,
    release() {
      Collection.prototype.insertOne = insertOne;
      held.open();
    },
  };
}
