// Preloaded (node --import) into a cluster's workers: the worker numbered HOLD_START_WORKER (a
// follower: TESSERA_WORKER_ID) holds its start once it has read the signing key list (KeyRing.open
// has settled), as a slow start would: it writes HOLD_START_DIR/held, then goes on once
// HOLD_START_DIR/release exists (a minute at most). Every other worker starts as it would.
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const worker = process.env.HOLD_START_WORKER;
const dir = process.env.HOLD_START_DIR;

if (worker !== undefined && dir !== undefined && process.env.TESSERA_WORKER_ID === worker) {
  const { KeyRing } = await import("../../src/core/key-ring.js");
  const open = KeyRing.open.bind(KeyRing);
  KeyRing.open = async (...args: Parameters<typeof KeyRing.open>) => {
    const ring = await open(...args);
    writeFileSync(join(dir, "held"), "");
    for (let waited = 0; waited < 60_000 && !existsSync(join(dir, "release")); waited += 20) await new Promise((resolve) => setTimeout(resolve, 20));
    return ring;
  };
}
