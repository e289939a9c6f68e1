// @tessera/client as it is published: built by its own tsc, packed by npm (its `files`), and
// imported by name from a plain Node ESM program and a TypeScript consumer (its `exports` and
// types), with only its peer dependencies beside it. Its code imports nothing of the server's.
// That its generated code is what its buf.gen.yaml makes from the protos is the project's
// generated-code test's (test/server/generated.test.ts), with the service's.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative, resolve } from "node:path";
import { promisify } from "node:util";
import { jwtTokens, sessionTokens, startTestServer, testClientId, type TestServer } from "./support.js";

const run = promisify(execFile);
const repo = resolve(import.meta.dirname, "../../..");
const pkg = join(repo, "clients/node");
const bin = (name: string) => join(repo, "node_modules/.bin", name);

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

const manifest = JSON.parse(readFileSync(join(pkg, "package.json"), "utf8"));

describe("@tessera/client as a package", () => {
  it("package.json: ESM, exports with types, published files, jose as its one dependency, peer dependencies only on connect-es, protobuf-es and (optionally) grpc-js", () => {
    assert.equal(manifest.name, "@tessera/client");
    assert.equal(manifest.type, "module");
    assert.deepEqual(Object.keys(manifest.exports), [".", "./grpc-js", "./gen/*.js", "./package.json"]);
    assert.deepEqual(manifest.files, ["dist/src", "dist/gen", "README.md"]);
    assert.deepEqual(Object.keys(manifest.dependencies), ["jose"]);
    assert.deepEqual(Object.keys(manifest.peerDependencies).sort(), ["@bufbuild/protobuf", "@connectrpc/connect", "@connectrpc/connect-node", "@grpc/grpc-js"]);
    assert.deepEqual(manifest.peerDependenciesMeta, { "@grpc/grpc-js": { optional: true } });
  });

  it("its code imports only its own files, node: built-ins, jose and its peer dependencies (grpc-js only in the grpc-js entry)", () => {
    const allowed = ["jose", "@connectrpc/connect", "@connectrpc/connect/protocol", "@connectrpc/connect/protocol-connect", "@connectrpc/connect/protocol-grpc", "@connectrpc/connect/protocol-grpc-web", "@connectrpc/connect-node", "@bufbuild/protobuf", "@bufbuild/protobuf/codegenv2", "@bufbuild/protobuf/wkt"];
    for (const dir of ["src", "gen"]) {
      for (const f of files(join(pkg, dir)).filter((f) => f.endsWith(".ts"))) {
        const path = join(pkg, dir, f);
        const text = readFileSync(path, "utf8");
        for (const m of text.matchAll(/(?:from|import)\s*\(?\s*"([^"]+)"/g)) {
          const spec = m[1]!;
          if (spec.startsWith(".")) {
            const target = relative(pkg, resolve(dirname(path), spec));
            assert.ok(/^(src|gen)\//.test(target), `${dir}/${f} imports ${spec}, outside the package`);
          } else if (spec === "@grpc/grpc-js") {
            assert.equal(`${dir}/${f}`, "src/grpc-js.ts", `${dir}/${f} imports @grpc/grpc-js`);
          } else {
            assert.ok(spec.startsWith("node:") || allowed.includes(spec), `${dir}/${f} imports ${spec}`);
          }
        }
      }
    }
  });

  describe("built, packed and installed", () => {
    let server: TestServer;
    let app: string;
    before(async function () {
      this.timeout(120000);
      server = await startTestServer();
      app = mkdtempSync(join(tmpdir(), "tessera-client-app-"));
      await run(bin("tsc"), ["-p", pkg], { cwd: pkg });
      const packed = JSON.parse((await run("npm", ["pack", "--ignore-scripts", "--json", "--pack-destination", app], { cwd: pkg })).stdout)[0];
      const installed = join(app, "node_modules/@tessera/client");
      mkdirSync(installed, { recursive: true });
      await run("tar", ["-xzf", join(app, packed.filename), "-C", installed, "--strip-components=1"]);
      // The dependency and the peer dependencies, as an application that installed the package has them.
      for (const name of ["jose", "@connectrpc", "@bufbuild", "@grpc", "@types"]) symlinkSync(join(repo, "node_modules", name), join(app, "node_modules", name));
    });
    after(async () => {
      await server.close();
      rmSync(app, { recursive: true, force: true });
    });

    it("npm pack ships the built JavaScript, its declarations, the README and package.json; no sources or tests", () => {
      const shipped = files(join(app, "node_modules/@tessera/client"));
      assert.ok(shipped.includes("dist/src/index.js") && shipped.includes("dist/src/index.d.ts") && shipped.includes("dist/src/grpc-js.js"));
      assert.ok(shipped.includes("dist/gen/tessera/session/v1/session_pb.js"));
      assert.deepEqual(shipped.filter((f) => !f.startsWith("dist/")), ["README.md", "package.json"]);
      assert.deepEqual(shipped.filter((f) => !/\.(js|d\.ts)$/.test(f) && f.startsWith("dist/")), []);
    });

    it("a plain Node ESM program imports it by name and verifies Tessera's tokens with it", async function () {
      this.timeout(60000);
      writeFileSync(
        join(app, "main.mjs"),
        `import * as client from "@tessera/client";
import * as grpcjs from "@tessera/client/grpc-js";
import { GetSessionRequestSchema } from "@tessera/client/gen/tessera/session/v1/session_pb.js";
const verifier = client.createTokenVerifier({ jwksUrl: process.env.JWKS_URL, issuer: "tessera", audience: "tessera", clientId: process.env.CLIENT_ID });
const jwt = await verifier.verify(process.env.JWT);
const session = await verifier.verify(process.env.SESSION);
const keys = client.createTesseraClient(client.KeyService, { baseUrl: process.env.TESSERA, protocol: "grpc" });
const config = await keys.getOpenIdConfiguration({});
console.log(JSON.stringify({
  kinds: [jwt.kind, session.kind],
  issuer: config.issuer,
  schema: GetSessionRequestSchema.typeName,
  grpcjs: Object.keys(grpcjs).sort(),
  exports: Object.keys(client).sort(),
}));
`,
      );
      const j = await jwtTokens(server);
      const s = await sessionTokens(server);
      const { stdout } = await run(process.execPath, ["main.mjs"], {
        cwd: app,
        env: { PATH: process.env.PATH, TESSERA: server.url, JWKS_URL: `${server.url}/.well-known/jwks.json`, CLIENT_ID: testClientId, JWT: j.access, SESSION: s.access },
      });
      const out = JSON.parse(stdout);
      assert.deepEqual(out.kinds, ["jwt", "session"]);
      assert.equal(out.issuer, "tessera");
      assert.equal(out.schema, "tessera.session.v1.GetSessionRequest");
      assert.deepEqual(out.grpcjs, ["createGrpcJsAuthInterceptor", "principalOf"]);
      assert.deepEqual(out.exports, [
        "ApiTokenService",
        "AuditService",
        "AuthenticationTokenService",
        "JwtService",
        "KeyService",
        "SessionService",
        "TokenErrorCodes",
        "TokenVerificationError",
        "UserService",
        "UserTokenService",
        "basic",
        "bearer",
        "clientId",
        "clientIdHeaderName",
        "createAuthInterceptor",
        "createTesseraClient",
        "createTesseraTransport",
        "createTokenVerifier",
        "credentialInterceptor",
        "errorReason",
        "principalKey",
        "requirePrincipal",
        "retryAfterSeconds",
        "supportedAlgorithms",
      ]);
    });

    it("a TypeScript consumer typechecks against its declarations (strict, NodeNext)", async function () {
      this.timeout(60000);
      writeFileSync(
        join(app, "consumer.ts"),
        `import type { Interceptor } from "@connectrpc/connect";
import { bearer, clientId, createTesseraClient, createTesseraTransport, createTokenVerifier, SessionService, type VerifiedToken } from "@tessera/client";
import { createGrpcJsAuthInterceptor } from "@tessera/client/grpc-js";
import type { GetSessionResponse } from "@tessera/client/gen/tessera/session/v1/session_pb.js";
const sessions = createTesseraClient(SessionService, { baseUrl: "http://127.0.0.1:8080", protocol: "connect", credentials: clientId("web") });
export const res: Promise<GetSessionResponse> = sessions.getSession({}, { headers: bearer("t") });
const verifier = createTokenVerifier({ issuer: "https://auth.example", audience: "tessera" });
export function describe(t: VerifiedToken): string {
  return t.kind === "session" ? t.sessionId : t.user;
}
export const interceptor = createGrpcJsAuthInterceptor(verifier);
// A readonly list of interceptors (\`as const\`), and the transport closed.
const logged: Interceptor = (next) => (req) => next(req);
const interceptors = [logged] as const;
const transport = createTesseraTransport({ baseUrl: "http://127.0.0.1:8080", protocol: "grpc", interceptors });
export const closed: Promise<void> = transport.close();
`,
      );
      writeFileSync(
        join(app, "tsconfig.json"),
        JSON.stringify({ compilerOptions: { module: "NodeNext", moduleResolution: "NodeNext", target: "ES2022", strict: true, noEmit: true, types: ["node"] }, files: ["consumer.ts"] }),
      );
      // tsc's own report, not only "Command failed".
      await run(bin("tsc"), ["-p", app], { cwd: app }).catch((e: { stdout: string }) => assert.fail(e.stdout));
    });
  });
});
