// The MongoDB driver, loaded when a MongoDB store is opened (openMongoStore), not when the
// process starts: the embedded store never needs it, and loading it cost every start-up about
// 80 ms and its memory. Its types are imported statically (erased); its values only through
// mongoDriver(), which every adapter reaches after openMongoStore has loaded it.
import type * as Driver from "mongodb";

let loaded: typeof Driver | undefined;

/** Loads the driver once (openMongoStore awaits this before anything else). */
export async function loadMongoDriver(): Promise<typeof Driver> {
  return (loaded ??= await import("mongodb"));
}

/** The loaded driver; undefined before a MongoDB store was opened (no driver error can exist then). */
export function mongoDriver(): typeof Driver | undefined {
  return loaded;
}
