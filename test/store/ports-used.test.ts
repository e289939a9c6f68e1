// src/store/README.md: "A port method exists because the core calls it: nothing is kept for
// tests alone." Every method a port interface in src/store/ports/ declares must be called by
// code outside src/store (the core, the services, the server), not only by the store's tests.
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

/** The method names declared in the exported interfaces of one port file. */
function portMethods(source: string): string[] {
  const names: string[] = [];
  for (const body of source.matchAll(/^export interface \w+(?:<[^>]*>)? \{\n([\s\S]*?)^\}/gm)) {
    for (const m of body[1]!.matchAll(/^ {2}(\w+)(?:<[^>]*>)?\(/gm)) names.push(m[1]!);
  }
  return names;
}

/** Every .ts file under `dir`, except those under `skip`. */
function sources(dir: string, skip: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: "utf8" })
    .map((f) => join(dir, f))
    .filter((f) => f.endsWith(".ts") && !f.startsWith(skip));
}

describe("store ports", () => {
  it("declare only methods that code outside src/store calls", () => {
    const portsDir = join("src", "store", "ports");
    const declared = readdirSync(portsDir)
      .filter((f) => f.endsWith(".ts"))
      .flatMap((f) => portMethods(readFileSync(join(portsDir, f), "utf8")).map((name) => ({ file: f, name })));
    assert.ok(declared.length > 20, `found only ${declared.length} port methods: the parser no longer reads the ports`);
    const callers = sources("src", join("src", "store")).map((f) => readFileSync(f, "utf8")).join("\n");
    const unused = declared.filter(({ name }) => !new RegExp(`\\.${name}\\(`).test(callers));
    assert.deepEqual(unused, [], "port methods no code outside src/store calls");
  });
});
