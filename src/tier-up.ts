// V8's tier-up threshold, lowered for a long-running service once it listens.
//
// V8 runs a function in its interpreter, then its baseline code, and optimizes it (TurboFan) only
// once the function has run its "interrupt budget" of bytecode several times over (66 KiB a tick
// by default). A call to Tessera runs a few hundred small functions once or a few times each, so
// at the rates most deployments see (tens or hundreds of calls a second, not thousands) most of
// them stay in baseline code for many minutes, paying V8's inline caches and generic calls on
// every call. With a budget of 8 KiB they are optimized
// after an eighth of the runs. Measured (README, "Calls at everyday rates"): CPU per token check
// at 200 calls a second 0.83 x over REST, 0.86 x over gRPC; under saturation unchanged.
//
// Set once the start is done, so that start-up (code run once) is as before, and after the
// bundle is compiled with its code cache, which V8 refuses under flags other than the build's
// (run.ts sets it in a start through start.cjs only: the build's cache writer runs the bundle too).
// V8 reads the budget each time a function's budget runs out, so it applies to every function
// from then on. A budget given on node's command line (`node --interrupt-budget=N
// dist/src/start.cjs`) is the operator's and is kept.
import { setFlagsFromString } from "node:v8";

/** The interrupt budget (bytes of bytecode a function runs between tier-up checks) set at listen. */
export const serviceInterruptBudget = 8192;

/**
 * Sets V8's interrupt budget to serviceInterruptBudget (through `setFlags`) unless `execArgv`
 * (node's own arguments) sets one; returns the budget then in force: the one set, or the command
 * line's as given.
 */
export function lowerTierUpBudget(execArgv: readonly string[] = process.execArgv, setFlags: (flags: string) => void = setFlagsFromString): number | string {
  for (let i = 0; i < execArgv.length; i++) {
    const m = /^--interrupt[-_]budget(?:=(.*))?$/.exec(execArgv[i]!);
    if (m) return m[1] ?? execArgv[i + 1] ?? "";
  }
  setFlags(`--interrupt-budget=${serviceInterruptBudget}`);
  return serviceInterruptBudget;
}
