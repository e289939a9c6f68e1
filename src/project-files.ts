// Files Tessera reads at run time (the package version, the common-password list, generated
// documents), found from the project root — the directory holding Tessera's package.json — so
// the same code runs from src/ (tests, tsx) and compiled from dist/src/ (npm start).
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

function findRoot(from: string): string {
  for (let dir = from; ; dir = dirname(dir)) {
    const manifest = join(dir, "package.json");
    if (existsSync(manifest) && (JSON.parse(readFileSync(manifest, "utf8")) as { name?: string }).name === "tessera") return dir;
    if (dirname(dir) === dir) throw new Error(`Tessera's package.json not found above ${from}`);
  }
}

export const projectRoot = findRoot(dirname(fileURLToPath(import.meta.url)));

/** A path inside the project, e.g. projectFile("package.json"). */
export function projectFile(...parts: string[]): string {
  return join(projectRoot, ...parts);
}

/** Tessera's package version. */
export const packageVersion = (JSON.parse(readFileSync(projectFile("package.json"), "utf8")) as { version: string }).version;
