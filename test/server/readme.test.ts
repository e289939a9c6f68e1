// The README (and docs/clients.md) against the code, where a claim can be checked mechanically:
// the configuration table is generated from src/config.ts; every variable, error reason, metric
// and file the text names exists; the commands say what they claim to do.
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { Code } from "@connectrpc/connect";
import { MethodOptions_IdempotencyLevel } from "@bufbuild/protobuf/wkt";
import { ApiTokenService } from "../../gen/tessera/apitoken/v1/api_token_pb.js";
import { AuditService } from "../../gen/tessera/audit/v1/audit_pb.js";
import { AuthenticationTokenService } from "../../gen/tessera/authtoken/v1/authentication_token_pb.js";
import { JwtService } from "../../gen/tessera/jwt/v1/jwt_pb.js";
import { KeyService } from "../../gen/tessera/key/v1/key_pb.js";
import { SessionService, UserService } from "../../gen/tessera/session/v1/session_pb.js";
import { UserTokenService } from "../../gen/tessera/usertoken/v1/user_token_pb.js";
import { withTable } from "../../scripts/docs-config.js";
import { loadConfig, variables } from "../../src/config.js";
import { restRoutes, servedServices } from "../../src/rest-routes.js";
import { auditEventTypes } from "../../src/core/audit.js";
import { Reasons } from "../../src/core/errors.js";
import { ServerReasons } from "../../src/server/error-details.js";
import { createMetrics } from "../../src/server/metrics.js";
import { indexPlan } from "../../src/store/mongo/mongo-indexes.js";
import { TranscodeReasons } from "../../src/transcode/http-error.js";
import { refusedHeaders } from "../../clients/node/src/verify/compact-jws.js";
import { authCallbackWarningCode } from "../../clients/node/src/authenticate.js";
import { TokenErrorCodes } from "../../clients/node/src/verify/errors.js";

// The client package's README is held to the same (its routes, variables, files and names).
const documents = ["README.md", "docs/clients.md", "clients/node/README.md"];
const read = (file: string) => readFileSync(file, "utf8");

/** The README's section under `heading` (to the next heading of its level or above, outside code blocks). */
function section(text: string, heading: string): string {
  const lines = text.split("\n");
  const start = lines.indexOf(heading);
  assert.ok(start >= 0, `no section ${heading}`);
  const level = heading.indexOf(" ");
  let fenced = false;
  let end = start + 1;
  for (; end < lines.length; end++) {
    const line = lines[end]!;
    if (line.startsWith("```")) fenced = !fenced;
    else if (!fenced && new RegExp(`^#{1,${level}} `).test(line)) break;
  }
  return lines.slice(start + 1, end).join("\n");
}

describe("README", () => {
  it("documents every configuration variable exactly as src/config.ts declares it (npm run docs:config)", () => {
    const readme = read("README.md");
    assert.equal(readme, withTable(readme));
  });

  it("gives the two commands: run and test", () => {
    const readme = read("README.md");
    assert.ok(readme.includes("npm ci && npm start"));
    assert.ok(readme.includes("npm test"));
  });

  it("the table of APIs names each service's REST routes, and every one of them", () => {
    const rows = read("README.md").split("\n").filter((l) => /^\| .* \| `tessera\.[a-z]+\.v1\.[A-Za-z]+Service`/.test(l));
    assert.equal(rows.length, 7);
    const named = new Set<string>();
    for (const row of rows) {
      const [, paths, services] = row.split(" | ");
      const serviceNames = [...services!.matchAll(/`(tessera\.[a-z.0-9]+\.[A-Za-z]+)`/g)].map((m) => m[1]!);
      const routes = servedServices(true)
        .filter((s) => serviceNames.includes(s.typeName))
        .flatMap((s) => restRoutes(s).map((r) => ({ method: r.httpMethod, path: r.pattern })));
      assert.equal(new Set(routes.map((r) => r.path)).size > 0, true, row);
      serviceNames.forEach((n) => named.add(n));
      // `POST/PUT /session` (methods and path) or `/jwt/token` (the path, every method).
      const listed = [...paths!.matchAll(/`(?:([A-Z]+(?:\/[A-Z]+)*) )?(\/[^`]*)`/g)].map((m) => ({ methods: m[1]?.split("/"), path: m[2]! }));
      for (const { methods, path } of listed) {
        for (const method of methods ?? [undefined]) {
          assert.ok(routes.some((r) => r.path === path && (method === undefined || r.method === method)), `${method ?? ""} ${path} is no route of ${serviceNames.join(", ")}`);
        }
      }
      for (const route of routes) {
        assert.ok(listed.some((l) => l.path === route.path && (l.methods === undefined || l.methods.includes(route.method))), `${route.method} ${route.path} is not in the row of ${serviceNames.join(", ")}`);
      }
    }
    assert.deepEqual([...named].sort(), servedServices(true).map((s) => s.typeName).sort());
  });

  it("names no TESSERA_ variable that src/config.ts does not read", () => {
    const declared = new Set(Object.values(variables).map((v) => v.name));
    // The Go example's tests take these (docs/clients.md), not the service.
    const goExample = new Set(["TESSERA_ADDR", "TESSERA_CLIENT_ID", "TESSERA_CA_FILE"]);
    for (const file of documents) {
      const named = new Set([...read(file).matchAll(/\bTESSERA_[A-Z0-9_]*[A-Z0-9]\b/g)].map((m) => m[0]));
      // The client package's README names the code of its process warning.
      const unknown = [...named].filter((name) => !declared.has(name) && !goExample.has(name) && !(file.startsWith("clients/") && name === authCallbackWarningCode));
      assert.deepEqual(unknown, [], `${file} names variables Tessera does not read`);
    }
  });

  it("names as an error reason (`UPPER_SNAKE`) only reasons Tessera sends", () => {
    const reasons = new Set<string>([...Object.values(Reasons), ...Object.values(ServerReasons), ...Object.values(TranscodeReasons)]);
    const variableNames = new Set(Object.values(variables).map((v) => v.name));
    // Other UPPER_SNAKE names the text quotes: gRPC codes, HTTP/2 error codes, health statuses,
    // environment variables that are not Tessera's own, and Node's system error codes.
    const grpcCodes = Object.keys(Code)
      .filter((k) => Number.isNaN(Number(k)))
      .map((k) => k.replace(/([a-z])([A-Z])/g, "$1_$2").toUpperCase());
    const others = new Set([...grpcCodes, "NO_ERROR", "ENHANCE_YOUR_CALM", "HTTP_1_1_REQUIRED", "INADEQUATE_SECURITY", "REFUSED_STREAM", "NOT_SERVING", "NODE_OPTIONS", "OTEL_SERVICE_NAME", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "UV_THREADPOOL_SIZE", "GLIBC_TUNABLES", "EAI_AGAIN"]);
    // The client package's README names its verifier's codes too.
    const clientCodes = new Set<string>([...TokenErrorCodes, authCallbackWarningCode]);
    for (const file of documents) {
      const quoted = new Set([...read(file).matchAll(/`([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)`/g)].map((m) => m[1]!));
      const unknown = [...quoted].filter((w) => !reasons.has(w) && !variableNames.has(w) && !others.has(w) && !(file.startsWith("clients/") && clientCodes.has(w)));
      assert.deepEqual(unknown, [], `${file} quotes names that are no reason Tessera sends`);
    }
  });

  it("clients/node/README.md's MALFORMED_TOKEN names every header member the offline verifier refuses", () => {
    const row = read("clients/node/README.md")
      .split("\n")
      .find((l) => l.startsWith("| `MALFORMED_TOKEN` |"));
    assert.ok(row, "the MALFORMED_TOKEN row");
    const named = new Set([...row.matchAll(/`([^`]+)`/g)].map((m) => m[1]!));
    assert.deepEqual(refusedHeaders.filter((h) => !named.has(h)), [], "refused header members the row does not name");
  });

  it("lists every tessera_ metric the server registers, and no other (Metrics)", () => {
    const table = section(read("README.md"), "### Metrics");
    const listed = new Set([...table.matchAll(/^\| (.+?) \|/gm)].flatMap((m) => [...m[1]!.matchAll(/`(tessera_[a-z_]+)`/g)].map((n) => n[1]!)));
    const metrics = createMetrics();
    // Everything registered, the conditional ones too: the signing key's age (not under HS256)
    // and the TLS certificate's.
    metrics.watch({
      hashPool: { inUse: 0, queued: 0, reserved: 0 },
      audit: { enabled: true, observe() {} },
      apiTokens: { cacheCounts: () => ({ hits: 0, misses: 0 }) },
      verifier: { cacheCounts: () => ({ hits: 0, misses: 0 }) },
      keyRing: { alg: "EdDSA", jwks: async () => [], signingKeyAgeSeconds: async () => 0 },
    });
    metrics.certificate(() => new Date());
    const registered = new Set(
      metrics.registry
        .getMetricsAsArray()
        .map((m) => (m as unknown as { name: string }).name)
        .filter((name) => name.startsWith("tessera_")),
    );
    assert.deepEqual([...listed].sort(), [...registered].sort());
  });

  it("names each label of a tessera_ metric in its row (Metrics)", () => {
    const rows = section(read("README.md"), "### Metrics")
      .split("\n")
      .filter((l) => l.startsWith("| `tessera_"));
    for (const m of createMetrics().registry.getMetricsAsArray() as unknown as Array<{ name: string; labelNames?: string[] }>) {
      if (!m.name.startsWith("tessera_")) continue;
      const row = rows.find((r) => r.split(" | ")[0]!.includes(`\`${m.name}\``));
      assert.ok(row, m.name);
      const labels = row.split(" | ")[2]!;
      for (const label of m.labelNames ?? []) assert.ok(labels.includes(`\`${label}\``), `${m.name}: label ${label} is not named in its row`);
    }
  });

  it("lists every audit event type Tessera records, and no other (Audit trail)", () => {
    const table = section(read("README.md"), "### Audit trail");
    const listed = [...table.matchAll(/^\| (`[a-z_.]+`(?:, `[a-z_.]+`)*) \|/gm)].flatMap((m) => [...m[1]!.matchAll(/`([a-z_.]+)`/g)].map((t) => t[1]!));
    assert.deepEqual([...listed].sort(), [...auditEventTypes].sort());
  });

  it("names as a MongoDB index only indexes the store makes, on the keys its name spells, unique exactly where it says so (Scale out)", () => {
    const text = section(read("README.md"), "## Scale out");
    // An index name: each key's field and direction joined by "_" (MongoDB's default naming).
    const indexName = /^[A-Za-z_]+?_-?1(?:_[A-Za-z_]+?_-?1)*$/;
    const spelled = (keys: object) => Object.entries(keys).map(([field, direction]) => `${field}_${direction}`).join("_");
    const made = (name: string) => indexPlan.filter((index) => index.options.name === name);
    for (const index of indexPlan) assert.equal(index.options.name, spelled(index.keys as Record<string, unknown>), `${index.collection}: its name spells its keys`);
    // One an older version made, which the text says is no longer used.
    const retired = ["key_1_windowStart_1"];
    assert.match(text, /`key_1_windowStart_1` is no longer used/);
    const named = new Set([...text.matchAll(/`([^`]+)`/g)].map((m) => m[1]!).filter((token) => indexName.test(token)));
    assert.deepEqual([...named].filter((name) => !retired.includes(name) && made(name).length === 0), [], "indexes named that the store does not make");
    assert.deepEqual(retired.filter((name) => made(name).length > 0), [], "a retired index is still made");
    // The table: each index of a row is made on one of the row's collections.
    for (const row of section(text, "### Indexes and shard keys").split("\n").filter((line) => line.startsWith("| `"))) {
      const [collections, lookups] = row.slice(2).split(" | ").map((cell) => [...cell.matchAll(/`([^`]+)`/g)].map((m) => m[1]!));
      for (const name of lookups!.filter((token) => indexName.test(token) && !retired.includes(token))) {
        assert.ok(made(name).some((index) => collections!.includes(index.collection)), `${name} is not made on ${collections!.join(", ")}`);
      }
    }
    const unique = [...text.matchAll(/unique `([^`]+)`(?: and `([^`]+)`)?/g)].flatMap((m) => m.slice(1).filter((name): name is string => name !== undefined && indexName.test(name)));
    const madeUnique = indexPlan.filter((index) => index.options.unique).map((index) => index.options.name!);
    assert.deepEqual([...new Set(unique)].sort(), [...new Set(madeUnique)].sort(), "the unique indexes");
  });

  it("links and quotes only files and directories that exist", () => {
    for (const file of documents) {
      const text = read(file);
      const links = [...text.matchAll(/\]\(([^)#\s]+)(?:#[^)]*)?\)/g)].map((m) => m[1]!).filter((p) => !/^[a-z]+:/.test(p));
      const paths = [...text.matchAll(/`((?:src|test|scripts|bench|proto|gen|clients|docs|examples|\.ci)\/[A-Za-z0-9_./-]*)`/g)].map((m) => m[1]!);
      const missing = [...links.map((p) => join(dirname(file), p)), ...paths].filter((p) => !existsSync(p));
      assert.deepEqual(missing, [], `${file} names files that do not exist`);
    }
  });

  it("names as `METHOD /path` only routes Tessera serves (the JWT API under its base path)", () => {
    const routes = servedServices(true).flatMap((s) => restRoutes(s).map((r) => `${r.httpMethod} ${r.pattern}`));
    // Served beside the APIs (src/server/index.ts, src/server/docs.ts).
    const served = new Set([...routes, "GET /healthz", "GET /readyz", "GET /metrics", "GET /openapi.json", "GET /docs"]);
    for (const file of documents) {
      // `GET /jwt/check`, `GET/DELETE /jwt/refresh_token`, `GET /jwt/check?<token>` (the path alone).
      const named = [...read(file).matchAll(/`((?:GET|HEAD|POST|PUT|PATCH|DELETE)(?:\/[A-Z]+)*) (\/[^`?\s]*)[^`]*`/g)]
        .flatMap((m) => m[1]!.split("/").map((method) => `${method === "HEAD" ? "GET" : method} ${m[2]!}`));
      const unknown = [...new Set(named)].filter((route) => !served.has(route));
      assert.deepEqual(unknown, [], `${file} names routes Tessera does not serve`);
    }
  });

  it("calls over gRPC the buf curl lines it presents as gRPC (buf curl speaks Connect unless told)", () => {
    const block = section(read("README.md"), "## Call it");
    const grpc = block.slice(block.indexOf("# gRPC"), block.indexOf("```", block.indexOf("# gRPC")));
    const lines = grpc.split("\n").filter((l) => l.includes("buf curl"));
    assert.ok(lines.length >= 3, grpc);
    for (const line of lines) assert.ok(line.includes("--protocol grpc"), line);
  });

  it("docs/clients.md lists as served by Connect GET exactly the methods declared NO_SIDE_EFFECTS", () => {
    const services = [SessionService, UserService, ApiTokenService, UserTokenService, AuthenticationTokenService, JwtService, KeyService, AuditService];
    const declared = services.flatMap((s) => s.methods.filter((m) => m.idempotency === MethodOptions_IdempotencyLevel.NO_SIDE_EFFECTS).map((m) => `${s.name}.${m.name}`));
    // "(SessionService.GetSession, ..., JwtService.Check, GetPublicKey, GetUser and GetVersion, ...)":
    // a bare method name belongs to the service named last.
    const bullet = /\*\*Connect GET\*\* for the methods declared `idempotency_level = NO_SIDE_EFFECTS`\s*\(([^)]*)\)/.exec(read("docs/clients.md"));
    assert.ok(bullet, "the Connect GET bullet of docs/clients.md");
    let service = "";
    const listed = bullet[1]!.split(/,\s*|\s+and\s+/).map((name) => {
      const dot = name.indexOf(".");
      if (dot >= 0) service = name.slice(0, dot);
      return dot >= 0 ? name.trim() : `${service}.${name.trim()}`;
    });
    assert.deepEqual(listed.sort(), declared.sort());
  });

  it("an empty variable counts as unset: its default applies (Configuration)", () => {
    const defaults = loadConfig({});
    for (const [key, v] of Object.entries(variables)) {
      const config = loadConfig({ [v.name]: "" });
      if (key === "clientIds" || key === "adminToken") assert.ok(config.generated[key === "clientIds" ? "clientId" : "adminToken"], v.name);
      else assert.deepEqual(config[key as keyof typeof config], defaults[key as keyof typeof defaults], v.name);
    }
    assert.throws(() => loadConfig({ NODE_ENV: "production", TESSERA_KEY_ENCRYPTION_KEY: "k".repeat(31) + "x", TESSERA_CLIENT_IDS: "web", TESSERA_ADMIN_TOKEN: "" }), /^ConfigError: TESSERA_ADMIN_TOKEN: required/);
  });
});
