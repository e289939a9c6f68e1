// A small file system of its own for a test that fills a disk: a tmpfs (mount needs root), and a
// filler file that takes its last byte.
import { execFileSync } from "node:child_process";
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface Tmpfs {
  readonly dir: string;
  /** Unmounts it (detached if a file is still held open: no mount is left behind) and removes its directory. */
  remove(): void;
}

/**
 * Mounts a tmpfs of `size` ("16m") on a new directory; undefined when this process may not (not
 * root, no mount), after which a test skips, but under CI=true fails.
 */
export function mountTmpfs(size: string, ctx: Mocha.Context): Tmpfs | undefined {
  const dir = mkdtempSync(join(tmpdir(), "tessera-tmpfs-"));
  try {
    execFileSync("mount", ["-t", "tmpfs", "-o", `size=${size},mode=0700`, "tmpfs", dir], { stdio: "pipe" });
  } catch {
    rmSync(dir, { recursive: true, force: true });
    if (process.env.CI === "true") throw new Error("CI=true but a tmpfs could not be mounted (mount -t tmpfs needs root): a disk-full test cannot run");
    ctx.skip();
    return undefined;
  }
  let mounted = true;
  return {
    dir,
    remove() {
      if (mounted) {
        // A file still held open (a process not yet gone) makes the mount busy: detach it then
        // (it goes once the last file is closed).
        try {
          execFileSync("umount", [dir], { stdio: "pipe" });
        } catch {
          execFileSync("umount", ["-l", dir], { stdio: "pipe" });
        }
        mounted = false;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Writes into `file` until the file system has not one byte left (ENOSPC at a one-byte write). */
export function fill(file: string): void {
  const fd = openSync(file, "a");
  const chunk = Buffer.alloc(64 * 1024, 1);
  try {
    for (let size = chunk.length; size >= 1; ) {
      try {
        writeSync(fd, chunk, 0, size);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== "ENOSPC") throw error;
        size = Math.floor(size / 2);
      }
    }
  } finally {
    closeSync(fd);
  }
}
