// `npm run build`, after tsc: concatenates tsc's output into two files, each a CommonJS module
// inside Node's module wrapper, and writes V8's code cache for the first (src/bundle-loader.cts
// loads them; start.cjs runs the first, in every worker):
//   dist/src/main.bundle.cjs     the service: src/run.ts and everything it imports, node_modules
//                                included, but for the OpenTelemetry SDK:
//   dist/src/otel.bundle.cjs     src/server/otel.ts and the SDK and OTLP exporter it imports (about
//                                a third of the whole), which tracing.ts loads only when
//                                OTEL_EXPORTER_OTLP_ENDPOINT is set: a start without tracing
//                                neither reads nor keeps it. It has no @opentelemetry/api of its
//                                own: the service's bundle holds the one copy (prom-client needs
//                                it at load) and gives it to this one (loadBundle's `shared`).
// Nothing is transformed but the module format (the code is tsc's), and three calls in
// node_modules, each checked to be there as written (the build fails if one is not):
// protobuf-es's fileDesc decodes its embedded descriptors with Node's Buffer, argon2 and
// better-sqlite3 look up their native addons in their own packages (below, where each is). Left
// out, loaded from node_modules when needed: the native addons themselves (argon2's and
// better-sqlite3's .node files), the MongoDB driver, which only a MongoDB store loads
// (src/store/mongo/mongo-driver.ts), and the embedded store's checkpointer thread, tsc's
// dist/src/store/sqlite/sqlite-checkpointer.cjs, which requires better-sqlite3 from node_modules
// when the log first needs a checkpoint (src/store/sqlite/sqlite-checkpoints.ts).
//
//   node scripts/bundle.mjs [DIST]      (DIST: tsc's output directory, default dist)
import { createHash } from "node:crypto";
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const dist = resolve(process.argv[2] ?? "dist");
const src = join(dist, "src");
// The wrapper the loader (tsc's output of src/bundle-loader.cts) compiles the file with.
const { bundleWrapperStart, bundleWrapperEnd } = createRequire(import.meta.url)(join(src, "bundle-loader.cjs"));

// The module tracing.ts imports as ./otel.js, in the service's bundle: loads otel.bundle.cjs
// beside it (a file of the bundle's own directory: `require` and `__dirname` are the bundle's)
// and gives it this bundle's @opentelemetry/api.
const otelLoader = `const { loadBundle } = require("./bundle-loader.cjs");
module.exports = loadBundle(require("node:path").join(__dirname, "otel.bundle.cjs"), { "@opentelemetry/api": require("@opentelemetry/api") }).exports;
`;

const otelBundleLoader = {
  name: "otel-bundle-loader",
  setup(b) {
    b.onResolve({ filter: /^\.\/otel\.js$/ }, (args) =>
      args.importer === join(src, "server", "tracing.js") ? { path: "otel-bundle", namespace: "tessera-otel" } : undefined,
    );
    b.onResolve({ filter: /^\.\/bundle-loader\.cjs$/, namespace: "tessera-otel" }, () => ({ path: "./bundle-loader.cjs", external: true }));
    b.onLoad({ filter: /.*/, namespace: "tessera-otel" }, () => ({ contents: otelLoader, loader: "js", resolveDir: src }));
  },
};

// protobuf-es's fileDesc (each generated *_pb.js calls it at load for its file's descriptor)
// decodes the embedded FileDescriptorProto from base64 with its own JavaScript decoder (Node 20
// has no Uint8Array.prototype.setFromBase64): about 28 KB of base64 a start, run once, in V8's
// interpreter. Node's Buffer decodes the same bytes natively. The strings are protoc-gen-es's
// output, valid standard base64, which both read alike; every other base64 the library
// decodes (JSON bytes fields, from clients) keeps its own decoder and its errors.
const embeddedBase64Call = "fromBinary(FileDescriptorProtoSchema, base64Decode(b64))";
// A plain Uint8Array over the Buffer's bytes, as base64Decode returns (the unknown fields the
// descriptors keep, custom options among them, are views of it).
const nativeBase64Call = 'fromBinary(FileDescriptorProtoSchema, ((b) => new Uint8Array(b.buffer, b.byteOffset, b.length))(Buffer.from(b64, "base64")))';
const nativeFileDescBase64 = {
  name: "native-file-desc-base64",
  setup(b) {
    b.onLoad({ filter: /[\\/]@bufbuild[\\/]protobuf[\\/]dist[\\/]esm[\\/]codegenv2[\\/]file\.js$/ }, (args) => {
      const text = readFileSync(args.path, "utf8");
      if (text.split(embeddedBase64Call).length !== 2) throw new Error(`${args.path}: fileDesc no longer reads \`${embeddedBase64Call}\`: update scripts/bundle.mjs`);
      return { contents: text.replace(embeddedBase64Call, nativeBase64Call), loader: "js" };
    });
  },
};

// argon2 and better-sqlite3 are bundled but for their native addons, which load from their
// packages in node_modules as before. Loaded from node_modules, each start resolved the two
// packages and compiled their JavaScript (about 15 files) without the code cache, and
// better-sqlite3's \`bindings\` found its package by walking a captured stack trace: together
// several milliseconds. Each addon is looked up as its package looks it up (node-gyp-build for
// argon2, bindings' list of places for better-sqlite3), from the package's own directory, found
// at run time from the bundle (require.resolve), so a missing addon fails the start with the
// package's own message as before.
const packageDir = (name) => `require("node:path").dirname(require.resolve(${JSON.stringify(`${name}/package.json`)}))`;
const argon2Addon = "gypBuild(__dirname)";
const nativeAddons = {
  name: "native-addons",
  setup(b) {
    b.onLoad({ filter: /[\\/]node_modules[\\/]argon2[\\/]argon2\.cjs$/ }, (args) => {
      const text = readFileSync(args.path, "utf8");
      if (text.split(argon2Addon).length !== 2) throw new Error(`${args.path}: argon2 no longer loads its addon with \`${argon2Addon}\`: update scripts/bundle.mjs`);
      return { contents: text.replace(argon2Addon, `gypBuild(${packageDir("argon2")})`), loader: "js" };
    });
    b.onResolve({ filter: /^bindings$/ }, (args) =>
      /[\\/]node_modules[\\/]better-sqlite3[\\/]lib[\\/]/.test(args.importer) ? { path: "better-sqlite3-bindings", namespace: "tessera-addon", pluginData: dirname(args.importer) } : undefined,
    );
    b.onLoad({ filter: /.*/, namespace: "tessera-addon" }, (args) => ({
      contents: `const bindings = require("bindings/bindings.js");
module.exports = (name) => bindings({ bindings: name, module_root: ${packageDir("better-sqlite3")} });
`,
      loader: "js",
      resolveDir: args.pluginData,
    }));
  },
};

/** Bundles `entry` (a file of tsc's output) into `name`; returns its size. */
async function bundle(name, entry, { external = [], plugins = [] } = {}) {
  const out = join(src, name);
  const result = await build({
    entryPoints: [join(src, entry)],
    bundle: true,
    platform: "node",
    format: "cjs",
    target: "node20",
    outfile: out,
    write: false,
    external: ["mongodb", "argon2/package.json", "better-sqlite3/package.json", ...external],
    plugins: [nativeFileDescBase64, nativeAddons, ...plugins],
    // import() written as require(): the loader compiles the bundle as a vm.Script, and one
    // compiled from V8's code cache (every start) loses its dynamic import callback in Node 20,
    // so an import() left in it fails ("A dynamic import callback was not specified"): the
    // MongoDB driver's, which stopped a start with MONGODB_URI, and the OTLP exporter's of
    // node:http, which dropped every span without a word.
    // Regular expressions with Unicode property escapes (\p{...}) stay literals, as tsc wrote
    // them: esbuild's table has node20 without them and wrote most as `new RegExp(...)`, which V8
    // parses as the module loads, its property sets built from ICU's data there and then (about
    // 1.5 ms and 0.8 MiB of node's data touched a start), where a literal is compiled when first
    // run. Node 20 has every property the code uses (Unicode 15).
    supported: { "dynamic-import": false, "regexp-unicode-property-escapes": true },
    // Each module's import.meta.url becomes the bundle's own: the two modules that use it look
    // up the project root and swagger-ui-dist from there, which the bundle's place (dist/src)
    // finds as the module's own place did.
    define: { "import.meta.url": "__tessera_bundle_url" },
    // Class and function names stay as written (error names, stack traces).
    keepNames: true,
    // Non-ASCII characters escaped (esbuild's default, made explicit): the loader reads the
    // bundle as Latin-1, a plain copy into a one-byte string, where UTF-8 would be decoded.
    charset: "ascii",
    logLevel: "warning",
  });
  const code = result.outputFiles[0].text;
  const nonAscii = /[^\x00-\x7f]/.exec(code);
  if (nonAscii) throw new Error(`${name}: non-ASCII character at offset ${nonAscii.index}; the loader reads the bundle as Latin-1`);
  // The build id names the code cache made for exactly this text (bundle-loader.cts). The file
  // is one function expression, Node's CommonJS wrapper around the code, which the loader
  // compiles as it is (no copy of the source joined to a wrapper at start-up); the code's lines
  // keep their numbers (from the third on).
  const id = createHash("sha256").update(code).digest("hex").slice(0, 32);
  const header = `// tessera bundle ${id}\n${bundleWrapperStart}var __tessera_bundle_url = require("node:url").pathToFileURL(__filename).href;\n`;
  writeFileSync(out, header + code + bundleWrapperEnd);
  return `${name} ${(code.length / 1048576).toFixed(2)} MiB`;
}

const sizes = [
  await bundle("main.bundle.cjs", "run.js", { plugins: [otelBundleLoader] }),
  await bundle("otel.bundle.cjs", "server/otel.js", { external: ["@opentelemetry/api"] }),
];
const main = readFileSync(join(src, "main.bundle.cjs"), "latin1");
for (const sdk of ["@opentelemetry/sdk-trace", "@opentelemetry/exporter-trace-otlp-http", "@opentelemetry/resources"]) {
  if (main.includes(`node_modules/${sdk}/`)) throw new Error(`main.bundle.cjs holds ${sdk}: it belongs in otel.bundle.cjs only`);
}
// (primary.bundle.cjs: an earlier build's, for a cluster's primary, which no longer exists.)
for (const f of readdirSync(src)) if (f.endsWith(".v8cache") || f === "primary.bundle.cjs") rmSync(join(src, f));
// Without its code cache the bundle still runs, only compiles as it starts: a machine where the
// service cannot start at build time (no loopback, a read-only temp directory) still builds.
let cache;
try {
  cache = execFileSync(process.execPath, [join(dirname(fileURLToPath(import.meta.url)), "code-cache.cjs"), dist], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
} catch (e) {
  cache = "none";
  console.warn(`bundle: the code cache was not written (start-up compiles instead):\n${e.stderr || e.message}`);
}
console.log(`bundles: ${sizes.join(", ")}; code cache: ${cache}`);
