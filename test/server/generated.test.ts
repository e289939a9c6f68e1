// gen/ is committed: it must be exactly what `npm run generate` makes from proto/.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

function files(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else out.push(relative(dir, p));
    }
  };
  walk(dir);
  return out.sort();
}

describe("generated code", () => {
  // Each template and the directory it writes: the service's code, and @tessera/client's.
  const outputs: [template: string | undefined, dir: string][] = [
    [undefined, "gen"],
    ["clients/node/buf.gen.yaml", "clients/node/gen"],
  ];
  for (const [template, dir] of outputs) {
    it(`${dir}/ is in sync with proto/ (run \`npm run generate\` and commit)`, async function () {
      // A hang guard, not a timing: three plugins on a shared machine.
      this.timeout(180000);
      const out = mkdtempSync(join(tmpdir(), "tessera-gen-"));
      try {
        await run("node_modules/.bin/buf", ["generate", ...(template ? ["--template", template] : []), "-o", out]);
        const fresh = join(out, dir);
        assert.deepEqual(files(dir), files(fresh), "the same generated files");
        for (const f of files(fresh)) {
          // Byte for byte: gen/ holds binary descriptors (.binpb) too.
          assert.ok(readFileSync(join(dir, f)).equals(readFileSync(join(fresh, f))), `${dir}/${f} is stale`);
        }
      } finally {
        rmSync(out, { recursive: true, force: true });
      }
    });
  }

  it("buf lint passes", async function () {
    this.timeout(60000);
    await run("node_modules/.bin/buf", ["lint"]);
  });
});
