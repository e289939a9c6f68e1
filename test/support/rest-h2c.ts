// REST over h2c (HTTP/2 without TLS, prior knowledge), as `curl --http2-prior-knowledge` sends
// it: one HTTP/2 connection, one stream per request. fetch speaks HTTP/1.1 only.
import { connect, type ClientHttp2Session, type IncomingHttpHeaders } from "node:http2";
import type { RestResponse } from "./clients.js";

export class RestH2c {
  private readonly session: ClientHttp2Session;

  constructor(baseUrl: string) {
    this.session = connect(baseUrl);
    this.session.on("error", () => {}); // a failed request reports its own error
  }

  /** Like `rest()` (clients.ts): `json` is sent as the body with content-type application/json, `body` as it is. */
  request(method: string, path: string, opts: { json?: unknown; headers?: Record<string, string>; body?: string } = {}): Promise<RestResponse> {
    const headers: Record<string, string> = { ":method": method, ":path": path, ...opts.headers };
    let body: string | undefined = opts.body;
    if (opts.json !== undefined) {
      body = JSON.stringify(opts.json);
      headers["content-type"] ??= "application/json";
    }
    return new Promise((resolve, reject) => {
      const stream = this.session.request(headers);
      let responseHeaders: IncomingHttpHeaders = {};
      const chunks: Buffer[] = [];
      stream.on("response", (h) => (responseHeaders = h));
      stream.on("data", (chunk: Buffer) => chunks.push(chunk));
      stream.on("error", reject);
      stream.on("end", () => {
        const text = Buffer.concat(chunks).toString("utf8");
        const out = new Headers();
        for (const [name, value] of Object.entries(responseHeaders)) {
          if (name.startsWith(":") || value === undefined) continue;
          out.set(name, Array.isArray(value) ? value.join(", ") : String(value));
        }
        let parsed: unknown = text;
        if ((out.get("content-type") ?? "").includes("json") && text.length > 0) parsed = JSON.parse(text);
        resolve({ status: Number(responseHeaders[":status"]), headers: out, body: parsed, text });
      });
      stream.end(body);
    });
  }

  close(): void {
    this.session.close();
  }
}
