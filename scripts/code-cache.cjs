// The build's last step (scripts/bundle.mjs runs it in a fresh process): writes V8's code cache
// for dist/src/main.bundle.cjs by starting the service from it once, as `npm start` does with one
// worker, on a scratch data directory and a free loopback port, until its first healthy answer.
// The cache then holds every function a start compiles (src/bundle-loader.cts).
//
//   node scripts/code-cache.cjs DIST
const { mkdtempSync, rmSync } = require("node:fs");
const http = require("node:http");
const net = require("node:net");
const { tmpdir } = require("node:os");
const { join, resolve } = require("node:path");

const dist = resolve(process.argv[2] ?? "dist");
const { writeCodeCache } = require(join(dist, "src", "bundle-loader.cjs"));

function freePort() {
  return new Promise((done, fail) => {
    const s = net.createServer().once("error", fail);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => done(port));
    });
  });
}

function healthy(port, deadline) {
  return new Promise((done, fail) => {
    const poll = () => {
      if (Date.now() > deadline) return fail(new Error("the service did not answer /healthz within 30 s"));
      http
        .get({ host: "127.0.0.1", port, path: "/healthz" }, (res) => {
          res.resume();
          if (res.statusCode === 200) done();
          else setTimeout(poll, 20);
        })
        .on("error", () => setTimeout(poll, 20));
    };
    poll();
  });
}

async function main() {
  const dataDir = mkdtempSync(join(tmpdir(), "tessera-code-cache-"));
  try {
    const port = await freePort();
    // Only the defaults and these: nothing of the building shell's own configuration (a
    // MONGODB_URI, TLS, a metrics port) reaches this start.
    for (const name of Object.keys(process.env)) {
      if (/^(TESSERA_|MONGODB_|OTEL_)/.test(name) || ["HOST", "PORT", "NODE_ENV"].includes(name)) delete process.env[name];
    }
    Object.assign(process.env, {
      HOST: "127.0.0.1",
      PORT: String(port),
      TESSERA_WORKERS: "1",
      TESSERA_DATA_DIR: dataDir,
      TESSERA_LOG_LEVEL: "error",
      TESSERA_CLIENT_IDS: "code-cache",
      TESSERA_ADMIN_TOKEN: "code-cache-admin-token-0123456789",
    });
    const file = await writeCodeCache(join(dist, "src", "main.bundle.cjs"), async (bundle) => {
      bundle.run();
      await healthy(port, Date.now() + 30_000);
    });
    process.stdout.write(file);
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (e) => {
    process.stderr.write(`code cache: ${e instanceof Error ? e.stack : String(e)}\n`);
    process.exit(1);
  },
);
