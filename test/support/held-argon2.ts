// argon2's calls held in a test, each keeping its hasher until the test releases it.
import argon2 from "argon2";
import { spyOn } from "./spy.js";

/** argon2's `name` (hash or verify), each call held until `release()`: it keeps its hasher meanwhile. */
export function heldArgon2(name: "hash" | "verify") {
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  const original = argon2[name] as (...args: unknown[]) => Promise<unknown>;
  const spy = spyOn(argon2, name, (async (...args: unknown[]) => {
    await gate;
    return original.apply(argon2, args);
  }) as never);
  return {
    calls: spy.calls,
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
