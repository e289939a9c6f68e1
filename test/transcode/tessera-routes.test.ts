/**
 * Every google.api.http binding of Tessera's own protos is mounted: the test walks the
 * generated descriptors, builds a concrete request for each binding, and checks that it
 * reaches an RPC instead of the transcoder's "no route" 404 or a 405.
 */
import { restMount } from "../../src/tessera.js";
import { strict as assert } from "node:assert";
import { readdirSync, readFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import type { DescFile, DescService } from "@bufbuild/protobuf";
import { createConnectRouter } from "@connectrpc/connect";
import { createTranscoder, parsePathTemplate } from "../../src/transcode/index.js";
import { httpRules } from "../../src/transcode/binding.js";
import { startTestServer, type TestServer } from "../support/server.js";

const protoRoot = fileURLToPath(new URL("../../proto/", import.meta.url));
const genRoot = fileURLToPath(new URL("../../gen/", import.meta.url));

/** Every file of Tessera's API (one package per API: tessera/<api>/v1/), relative to `root`. */
function apiFiles(root: string, suffix: string): string[] {
  return readdirSync(join(root, "tessera"), { recursive: true, encoding: "utf8" })
    .filter((f) => f.endsWith(suffix))
    .map((f) => join("tessera", f))
    .sort();
}

async function tesseraServices(): Promise<DescService[]> {
  const services: DescService[] = [];
  for (const name of apiFiles(genRoot, "_pb.ts")) {
    const mod = (await import(pathToFileURL(join(genRoot, name.replace(/\.ts$/, ".js"))).href)) as Record<string, unknown>;
    for (const v of Object.values(mod)) {
      if (isFile(v)) services.push(...v.services);
    }
  }
  return services;
}

function isFile(v: unknown): v is DescFile {
  return typeof v === "object" && v !== null && (v as { kind?: string }).kind === "file";
}

function basePath(s: DescService): string {
  return restMount(s, "/jwt").basePath;
}

interface Probe {
  rpc: string;
  method: string;
  path: string;
  body: boolean;
}

/** A concrete request for every binding: "x" for a `*`, "x/y" for a `**`. */
function probes(services: DescService[]): Probe[] {
  const out: Probe[] = [];
  for (const s of services) {
    for (const m of s.methods) {
      for (const rule of httpRules(m)) {
        const kind = rule.pattern.case!;
        const value = rule.pattern.value!;
        const template = typeof value === "string" ? value : value.path;
        const method = typeof value === "string" ? kind.toUpperCase() : value.kind;
        const t = parsePathTemplate(basePath(s).replace(/\/$/, "") + template);
        const segs = t.segments.map((seg) => (seg.kind === "literal" ? seg.value : seg.kind === "wildcard" ? "x" : "x/y"));
        out.push({ rpc: `${s.typeName}/${m.name}`, method, path: "/" + segs.join("/") + (t.verb ? ":" + t.verb : ""), body: rule.body !== "" });
      }
    }
  }
  return out;
}

async function call(base: string, p: Probe): Promise<{ status: number; body: string }> {
  const res = await fetch(base + p.path, {
    method: p.method,
    headers: p.body ? { "content-type": "application/json" } : {},
    body: p.body ? "{}" : undefined,
  });
  return { status: res.status, body: await res.text() };
}

function assertRouted(p: Probe, r: { status: number; body: string }): void {
  const noRoute = r.status === 404 && r.body.includes('"no route for');
  assert.ok(!noRoute && r.status !== 405, `${p.method} ${p.path} (${p.rpc}) is not mounted: ${r.status} ${r.body}`);
}

describe("Tessera's REST bindings", () => {
  let services: DescService[];
  let all: Probe[];
  before(async () => {
    services = await tesseraServices();
    all = probes(services);
  });

  it("finds the bindings of all eight services, as many as the .proto files declare", () => {
    assert.equal(new Set(all.map((p) => p.rpc.split("/")[0])).size, 8);
    // Counted from the sources, so a binding the walk missed fails here.
    let declared = 0;
    for (const f of apiFiles(protoRoot, ".proto")) {
      const text = readFileSync(join(protoRoot, f), "utf8");
      declared += (text.match(/option \(google\.api\.http\)/g) ?? []).length + (text.match(/additional_bindings/g) ?? []).length;
    }
    assert.equal(all.length, declared);
  });

  describe("with empty implementations (each binding reaches its RPC: 501)", () => {
    let server: Server;
    let url: string;
    before(async () => {
      const router = createConnectRouter();
      for (const s of services) router.service(s, {});
      const t = createTranscoder({ services: services.map((s) => ({ service: s, basePath: basePath(s) })), handlers: router.handlers });
      server = createServer((req, res) => void t.handle(req, res));
      await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
      url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    });
    after(() => new Promise<void>((resolve) => server.close(() => resolve())));

    it("answers every binding with UNIMPLEMENTED from the right RPC", async () => {
      for (const p of all) {
        const r = await call(url, p);
        assert.equal(r.status, 501, `${p.method} ${p.path}: ${r.body}`);
        assert.match(r.body, new RegExp(p.rpc.split("/")[1]!), `${p.method} ${p.path} reached ${p.rpc}`);
      }
    });
  });

  describe("on the full server", () => {
    let server: TestServer;
    before(async () => {
      server = await startTestServer();
    });
    after(() => server?.close());

    it("mounts every binding (no 'no route' 404, no 405)", async () => {
      for (const p of all) {
        assertRouted(p, await call(server.url, p));
      }
    });
  });
});
