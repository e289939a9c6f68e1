// argon2's calls held in a test, each keeping its hasher until the test releases it.
import argon2 from "argon2";
import { currentCall, type CallScope } from "../../src/call-scope.js";
import { spyOn } from "./spy.js";

/** argon2's `name` (hash or verify), each call held until `release()`: it keeps its hasher meanwhile. */
export function heldArgon2(name: "hash" | "verify") {
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  const original = argon2[name] as (...args: unknown[]) => Promise<unknown>;
  const scopes: Array<CallScope | undefined> = [];
  const spy = spyOn(argon2, name, (async (...args: unknown[]) => {
    scopes.push(currentCall());
    await gate;
    return original.apply(argon2, args);
  }) as never);
  return {
    calls: spy.calls,
    /** The call scope each held call was made in (its request's: the server's deadline, signal, request id). */
    scopes,
    release,
    /** Resolves once a call is held. */
    async started() {
      while (spy.calls.length === 0) await new Promise((r) => setTimeout(r, 5));
    },
    /** Releases what is held and puts argon2's own back. */
    restore() {
      release();
      spy.restore();
    },
  };
}

/**
 * The outcomes of the calls `burst` sends while argon2's `name` is held (heldArgon2): those that
 * reach it keep their hashers until `answered` of the calls have been answered (or 10 s pass),
 * then they are let go and answered too.
 */
export async function answeredWhileHashing<T>(name: "hash" | "verify", answered: number, burst: () => Promise<T>[]): Promise<T[]> {
  const held = heldArgon2(name);
  try {
    const calls = burst();
    let done = 0;
    for (const call of calls) call.then(() => done++, () => done++);
    for (const deadline = Date.now() + 10_000; done < answered && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 10));
    held.release();
    return await Promise.all(calls);
  } finally {
    held.restore();
  }
}
