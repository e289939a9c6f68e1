// GET /openapi.json: the API description (gen/openapi.json, read on the first request for it or
// the page, adapted to the APIs this server serves and where). GET /docs: a reference page rendering it with Swagger
// UI, whose files are served from node_modules (swagger-ui-dist): the page loads nothing from
// outside this server, and its Content-Security-Policy says so. Beside it, the same operations as
// Connect/gRPC calls (`x-rpc`, `x-buf-curl` of the document).
import { readFileSync } from "node:fs";
import type http from "node:http";
import type http2 from "node:http2";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { Readable, pipeline } from "node:stream";
import { gzipSync } from "node:zlib";
import type { DescService } from "@bufbuild/protobuf";
import { exampleBaseUrl } from "../openapi/example.js";
import { withoutTrailingSlashes } from "../core/text.js";
import { projectFile } from "../project-files.js";
import { restMount } from "../rest-routes.js";
import { entityTag, noneMatch } from "../transcode/conditional.js";
import { sendMethodNotAllowed } from "./error-details.js";

type NodeRequest = http.IncomingMessage | http2.Http2ServerRequest;
type NodeResponse = http.ServerResponse | http2.Http2ServerResponse;

export interface DocsOptions {
  /** The services this server serves: operations of others are left out of the document. */
  readonly services: readonly DescService[];
  /** TESSERA_JWT_BASE_PATH. */
  readonly jwtBasePath: string;
  /** What a 405 does not quote of the method (see unquotable). */
  readonly hidden: (text: string) => boolean;
  /** The committed document; default gen/openapi.json. */
  readonly documentFile?: string;
}

type OpenApi = { paths: Record<string, Record<string, Operation>>; tags?: Array<{ name: string; description?: string }> } & Record<string, unknown>;
type Operation = { "x-rpc"?: string; "x-buf-curl"?: string; summary?: string } & Record<string, unknown>;

/** Served as is: public, the same for every caller. */
interface Asset {
  readonly type: string;
  readonly body: Buffer;
  readonly etag: string;
  gzip?: Buffer;
}

const contentSecurityPolicy = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "font-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join("; ");

const swaggerUiFiles: Record<string, { file: string; type: string }> = {
  "/docs/swagger-ui.css": { file: "swagger-ui.css", type: "text/css; charset=utf-8" },
  "/docs/swagger-ui-bundle.js": { file: "swagger-ui-bundle.js", type: "text/javascript; charset=utf-8" },
};

// Swagger UI's start, a file of its own: the policy allows no inline script.
const startScript = `window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  showExtensions: true,
  validatorUrl: null,
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",
});
// The buf curl lines name the example address; shown here, they name the server the page came
// from (over TLS, buf curl negotiates HTTP/2 itself: no --http2-prior-knowledge).
for (const code of document.querySelectorAll("#rpc code")) {
  let text = code.textContent.split(${JSON.stringify(exampleBaseUrl)}).join(location.origin);
  if (location.protocol === "https:") text = text.replace("buf curl --http2-prior-knowledge ", "buf curl ");
  code.textContent = text;
}
`;

const pageStyle = `body { margin: 0; font-family: sans-serif; }
.rpc { max-width: 1460px; margin: 0 auto 4em; padding: 0 20px; color: #3b4151; }
.rpc h2 { font-size: 1.6em; } .rpc h3 { font-family: monospace; margin-top: 2em; }
.rpc table { border-collapse: collapse; width: 100%; }
.rpc td, .rpc th { border-bottom: 1px solid #ddd; padding: 6px; text-align: left; vertical-align: top; }
.rpc pre { margin: 0; white-space: pre-wrap; word-break: break-all; font-size: 12px; }
`;

/** The handler of /openapi.json, /docs and its files; false when the path is none of them. */
export function createDocs(options: DocsOptions): (req: NodeRequest, res: NodeResponse) => boolean {
  const file = options.documentFile ?? projectFile("gen", "openapi.json");
  // Read on first use, as Swagger UI's files are: a start does not wait for it.
  let document: OpenApi | undefined;
  const served = () => (document ??= servedDocument(JSON.parse(readFileSync(file, "utf8")) as OpenApi, options));
  const assets = new Map<string, Asset | (() => Asset)>([
    ["/openapi.json", () => asset("application/json", JSON.stringify(served()))],
    ["/docs", () => asset("text/html; charset=utf-8", page(served()))],
    ["/docs/docs.js", () => asset("text/javascript; charset=utf-8", startScript)],
    ["/docs/docs.css", () => asset("text/css; charset=utf-8", pageStyle)],
  ]);
  // Most servers never serve these.
  // swagger-ui-dist is looked up on the first request for one of its files, not as the server starts.
  let uiDir: string | undefined;
  for (const [path, { file: name, type }] of Object.entries(swaggerUiFiles)) {
    assets.set(path, () => asset(type, readFileSync(join((uiDir ??= dirname(createRequire(import.meta.url).resolve("swagger-ui-dist/package.json"))), name))));
  }

  return (req, res) => {
    const path = (req.url ?? "").split("?", 1)[0]!;
    let found = assets.get(path);
    if (found === undefined) return false;
    if (req.method !== "GET" && req.method !== "HEAD") {
      sendMethodNotAllowed(res, req.method, path, "GET, HEAD", options.hidden);
      return true;
    }
    if (typeof found === "function") {
      found = found();
      assets.set(path, found);
    }
    send(req, res, found, path === "/docs");
    return true;
  };
}

function asset(type: string, body: string | Buffer): Asset {
  const bytes = typeof body === "string" ? Buffer.from(body) : body;
  return { type, body: bytes, etag: entityTag(bytes) };
}

function send(req: NodeRequest, res: NodeResponse, a: Asset, isPage: boolean): void {
  // With CORS enabled the answer already varies with Origin (set before routing): added to, not
  // replaced, or a shared cache would hand one origin's Access-Control-Allow-Origin to another.
  const vary = res.getHeader("vary");
  const headers: Record<string, string> = {
    "content-type": a.type,
    "cache-control": "public, max-age=300",
    vary: vary === undefined ? "accept-encoding" : `${String(vary)}, accept-encoding`,
    "x-content-type-options": "nosniff",
  };
  if (isPage) {
    headers["content-security-policy"] = contentSecurityPolicy;
    headers["referrer-policy"] = "no-referrer";
  }
  // The gzip encoding is another representation, so another entity tag.
  const gzip = acceptsGzip(req.headers["accept-encoding"]) && a.body.length > 1024;
  headers.etag = gzip ? a.etag.slice(0, -1) + '-gzip"' : a.etag;
  if (noneMatch(req.headers["if-none-match"], headers.etag)) {
    res.writeHead(304, headers);
    res.end();
    return;
  }
  let body = a.body;
  if (gzip) {
    body = a.gzip ??= gzipSync(a.body);
    headers["content-encoding"] = "gzip";
  }
  headers["content-length"] = String(body.length);
  res.writeHead(200, headers);
  if (req.method === "HEAD") res.end();
  else if (body.length <= sliceBytes) res.end(body);
  // The bytes are shared by every answer, but a write is not: under TLS the whole of it is
  // encrypted at once and held until the client takes it (1.7 MB of Swagger UI's bundle per
  // connection that does not read, for the idle timeout, or as long as it reads slowly). Written
  // a slice at a time, each once the one before has gone, a connection holds one slice.
  else pipeline(Readable.from(slices(body)), res as NodeJS.WritableStream, () => {});
}

/** What a large asset is written in (see send). */
const sliceBytes = 64 * 1024;

function* slices(body: Buffer): Generator<Buffer> {
  for (let at = 0; at < body.length; at += sliceBytes) yield body.subarray(at, at + sliceBytes);
}

/**
 * Whether Accept-Encoding takes gzip (RFC 9110 12.5.3): named (or x-gzip, in any case) with a
 * weight above 0, or, when not named, "*" with one. "gzip;q=0" refuses it.
 */
function acceptsGzip(header: string | undefined): boolean {
  if (header === undefined) return false;
  let any = false;
  for (const entry of header.split(",")) {
    const [name = "", ...parameters] = entry.split(";");
    const coding = name.trim().toLowerCase();
    if (coding !== "gzip" && coding !== "x-gzip" && coding !== "*") continue;
    const q = parameters.map((p) => /^[ \t]*q[ \t]*=[ \t]*([0-9.]+)[ \t]*$/i.exec(p)?.[1]).find((v) => v !== undefined);
    const taken = q === undefined || Number(q) > 0;
    if (coding !== "*") return taken;
    any = taken;
  }
  return any;
}

/**
 * The committed document as this server serves it: operations of services it does not serve
 * left out, and each service's paths under the base path it is mounted at here.
 */
export function servedDocument(doc: OpenApi, options: Pick<DocsOptions, "services" | "jwtBasePath">): OpenApi {
  const byName = new Map(options.services.map((s) => [s.typeName, s]));
  const paths: OpenApi["paths"] = {};
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(item)) {
      const service = byName.get(String(op["x-rpc"] ?? "").split("/", 1)[0]!);
      if (service === undefined) continue;
      const declared = withoutTrailingSlashes(restMount(service).basePath);
      const served = withoutTrailingSlashes(restMount(service, options.jwtBasePath).basePath);
      const servedPath = declared !== served && path.startsWith(declared + "/") ? served + path.slice(declared.length) : path;
      (paths[servedPath] ??= {})[method] = op;
    }
  }
  const tags = doc.tags?.filter((t) => byName.has(t.name));
  return { ...doc, ...(tags ? { tags } : {}), paths };
}

function page(doc: OpenApi): string {
  const byService = new Map<string, Array<{ rpc: string; rest: string; call: string }>>();
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(item)) {
      const rpc = op["x-rpc"];
      if (typeof rpc !== "string") continue;
      const [service, name] = rpc.split("/") as [string, string];
      const list = byService.get(service) ?? [];
      list.push({ rpc: name, rest: `${method.toUpperCase()} ${path}`, call: String(op["x-buf-curl"] ?? "") });
      byService.set(service, list);
    }
  }
  const sections = (doc.tags ?? [])
    .filter((t) => byService.has(t.name))
    .map((t) => {
      const rows = byService
        .get(t.name)!
        .map((m) => `<tr><td><code>${esc(m.rpc)}</code></td><td><code>${esc(m.rest)}</code></td><td><pre><code>${esc(m.call)}</code></pre></td></tr>`)
        .join("\n");
      return `<h3 id="rpc-${esc(t.name)}">${esc(t.name)}</h3>\n<table><thead><tr><th>RPC</th><th>REST</th><th>Call with <code>buf curl</code></th></tr></thead>\n<tbody>${rows}</tbody></table>`;
    })
    .join("\n");
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Tessera API reference</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/docs/swagger-ui.css">
<link rel="stylesheet" href="/docs/docs.css">
</head>
<body>
<div id="swagger-ui"></div>
<section class="rpc" id="rpc">
<h2>Connect and gRPC</h2>
<p>Every operation above is also an RPC, served on the same port over gRPC, gRPC-Web and Connect
(HTTP/1.1 and HTTP/2): <code>POST /&lt;package.Service&gt;/&lt;Method&gt;</code>, with the same credentials
as headers (gRPC metadata). Errors carry the same codes. gRPC server reflection serves the schema,
so <code>buf curl</code> needs no proto files: <code>buf curl --http2-prior-knowledge --list-services ${esc(exampleBaseUrl)}</code>.
Also served: <code>grpc.health.v1.Health</code> and <code>grpc.reflection.v1</code> (and <code>v1alpha</code>).</p>
${sections}
</section>
<script src="/docs/swagger-ui-bundle.js"></script>
<script src="/docs/docs.js"></script>
</body>
</html>
`;
}

function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
