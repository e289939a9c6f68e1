// Loads the service's bundle, dist/src/main.bundle.cjs (`npm run build`: tsc's output for
// src/run.ts and everything it imports, concatenated by scripts/bundle.mjs), as Node loads a
// CommonJS module, but with V8's code cache for it.
//
// Why: start-up to the first healthy answer was mostly module loading. Node 20 resolves, reads
// and compiles each of about 600 ES and CommonJS modules one by one; one file compiles at once,
// and V8's code cache (the bytecode of every function a start runs, written at build time by
// starting the service once) spares most of the compiling. README, "Start-up and memory", has
// the figures.
//
// The cache file's name carries the bundle's build id (its first line), so a cache is only ever
// read for the bundle it was made from: V8 itself checks only the source's length, the V8
// version and the flags. A cache V8 refuses (another Node version, other V8 flags) is ignored:
// the bundle compiles as it would without one.
import { closeSync, fstatSync, openSync, readSync, renameSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname } from "node:path";
import { Script } from "node:vm";

/** What became of the code cache: used, refused by V8, or not there. */
export type CodeCacheUse = "accepted" | "rejected" | "absent";

export interface LoadedBundle {
  readonly exports: Record<string, unknown>;
  readonly codeCache: CodeCacheUse;
}

const buildIdLine = /^\/\/ tessera bundle ([0-9a-f]{16,64})\n/;
/**
 * Node's CommonJS wrapper, which scripts/bundle.mjs writes around the code (this opening at the
 * start of the second line, after the build id; the end after the code's last line): the file
 * compiles as it is, to the module's function.
 */
export const bundleWrapperStart = "(function (exports, require, module, __filename, __dirname) {";
export const bundleWrapperEnd = "\n})\n";

/** The file is not what this build's scripts/bundle.mjs writes (a stale or foreign dist). */
export class NotABundleError extends Error {
  constructor(readonly path: string) {
    super(`${path} is not a bundle of this build: run npm run build`);
    this.name = "NotABundleError";
  }
}

/**
 * Compiles the bundle, with its code cache when `useCache` and one was written; `cacheFile` is
 * the code cache's file, named by the bundle's build id.
 */
function compile(file: string, useCache: boolean): { script: Script; cacheFile: string; cached: boolean } {
  const bytes = readWhole(file);
  // ASCII only (scripts/bundle.mjs checks), so Latin-1 reads it exactly, as a plain copy.
  const source = bytes.toString("latin1");
  const idLine = buildIdLine.exec(source);
  if (idLine === null || !source.startsWith(bundleWrapperStart, idLine[0].length)) throw new NotABundleError(file);
  const cacheFile = `${file}.${idLine[1]}.v8cache`;
  let cachedData: Buffer | undefined;
  if (useCache) {
    try {
      // Into the bundle's bytes, which the string above copied: V8 reads the cache only while
      // the Script is made. Fresh memory is slow to touch on some machines (README, "Start-up
      // and memory"), and the cache's ~1 MiB of it was a few ms of each start.
      cachedData = readWhole(cacheFile, bytes);
    } catch {
      // none written (a build without it): compile without
    }
  }
  // No import() callback: a script compiled from the code cache loses it in Node 20, so the
  // bundle has no import() (scripts/bundle.mjs writes each as require()).
  const script = new Script(source, { filename: file, ...(cachedData !== undefined && { cachedData }) });
  return { script, cacheFile, cached: cachedData !== undefined };
}

/** A file's bytes, read into `reuse` when they fit (a view of it), else into a buffer of their own. */
function readWhole(file: string, reuse?: Buffer): Buffer {
  const fd = openSync(file, "r");
  try {
    const size = fstatSync(fd).size;
    const into = reuse !== undefined && size <= reuse.length ? reuse : Buffer.allocUnsafe(size);
    let read = 0;
    for (let n; read < size && (n = readSync(fd, into, read, size - read, read)) > 0; ) read += n;
    return into.subarray(0, read);
  } finally {
    closeSync(fd);
  }
}

/**
 * Runs the bundle's module function. `shared`: modules the bundle left out (external) that its
 * require() answers with the loading bundle's own copy instead of one from node_modules.
 */
function run(script: Script, file: string, shared: Readonly<Record<string, unknown>> = {}): Record<string, unknown> {
  const module = { exports: {} as Record<string, unknown> };
  const wrapper = script.runInThisContext() as (...args: unknown[]) => void;
  const fromNodeModules = createRequire(file);
  const names = Object.keys(shared);
  const require =
    names.length === 0 ? fromNodeModules : Object.assign((id: string): unknown => (Object.hasOwn(shared, id) ? shared[id] : fromNodeModules(id)), fromNodeModules);
  wrapper.call(module.exports, module.exports, require, module, file, dirname(file));
  return module.exports;
}

/**
 * Loads a bundle (runs its modules' set-up; the bundle starts nothing by itself): the service's,
 * or the OpenTelemetry SDK's (otel.bundle.cjs, which the service's loads when tracing is on and
 * gives its own @opentelemetry/api through `shared`).
 */
export function loadBundle(file: string, shared?: Readonly<Record<string, unknown>>): LoadedBundle {
  const { script, cached } = compile(file, true);
  const codeCache: CodeCacheUse = !cached ? "absent" : script.cachedDataRejected ? "rejected" : "accepted";
  return { exports: run(script, file, shared), codeCache };
}

/**
 * Writes the bundle's code cache beside it (the build's last step, scripts/code-cache.cjs): loads
 * the bundle as a start does and lets `warm` run it, so that the cache holds every function a
 * start compiles. Returns the file written.
 */
export async function writeCodeCache(file: string, warm: (exports: Record<string, unknown>) => Promise<void>): Promise<string> {
  const { script, cacheFile } = compile(file, false);
  await warm(run(script, file));
  const tmp = `${cacheFile}.${process.pid}.tmp`;
  writeFileSync(tmp, script.createCachedData());
  renameSync(tmp, cacheFile);
  return cacheFile;
}
