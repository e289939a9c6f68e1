// Records REST exchanges in a form that is stable from run to run: every value the server makes
// up at random (JWTs, UUIDs, API token secrets, random base64url secrets, PEM key bodies, the
// package version) becomes a numbered placeholder, the same value always the same placeholder
// within one run, so a diff shows field names, order, status codes, headers and shapes only.
// Timestamps are not replaced: the scenario runs on a frozen clock, so they are stable and their
// exact form is part of the wire.
//
// Speaks plain HTTP/1.1 through node:http (fetch refuses a body on GET, which seed 004 allows),
// and knows nothing of Tessera's code: only URLs, bytes and headers.
import http from "node:http";
import { createHash } from "node:crypto";

/** One request as the scenario sends it. */
export interface WireRequest {
  method: string;
  /** Path and query, sent as is (no encoding by the client). */
  path: string;
  headers?: Record<string, string>;
  /** The body; sent with Content-Length unless a `transfer-encoding: chunked` header is given. */
  body?: string;
}

/** The raw answer, for the scenario to read values from. */
export interface WireAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
  /** The JSON body (throws when the body is not JSON). */
  json(): any;
}

/** One recorded exchange, normalised. */
export interface Exchange {
  step: string;
  server: string;
  request: { method: string; path: string; headers: Record<string, string>; body?: string };
  response: { status: number; headers: Record<string, string | string[]>; body: string };
}

/** What a JWT placeholder stands for: its decoded header and payload (normalised), and signature size. */
export interface JwtShape {
  header: string;
  payload: string;
  signatureChars: number;
}

export interface Recording {
  servers: Record<string, Record<string, string>>;
  exchanges: Exchange[];
  jwts: Record<string, JwtShape>;
  /** Set when the scenario could not go on (an answer it needed was not there). */
  aborted?: string;
}

/** Response headers that vary by run or by connection, not by API: never recorded. */
const ignoredResponseHeaders = new Set(["date", "connection", "keep-alive"]);

/** Response headers new on every request (a fresh id): recorded as present, not by value. */
const perRequestHeaders = new Set(["x-request-id", "traceparent"]);

/** Request bodies longer than this are recorded as their size and hash. */
const longBody = 2048;

const base64urlChar = "A-Za-z0-9_-";
const variable = new RegExp(
  [
    // A JWT (header and payload are JSON objects: "eyJ").
    `(?<jwt>eyJ[${base64urlChar}]*\\.eyJ[${base64urlChar}]*\\.[${base64urlChar}]*)`,
    // A PEM block: the base64 body is replaced, the armour lines are kept.
    `(?<pem>-----BEGIN (?<label>[A-Z ]+)-----\\n(?<pemBody>[A-Za-z0-9+/=\\n]+?)\\n-----END \\k<label>-----)`,
    // A seed 001 API token secret.
    `(?<apiToken>tsr_[0-9A-Za-z]{38})`,
    `(?<uuid>[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})`,
    // Random base64url secrets: 32 bytes (43 characters: refresh tokens, cookies, kids, JWK
    // coordinates) and 24 bytes (32 characters: authentication tokens). Not the `value` of an
    // error detail (Connect's JSON error format): the base64 of a fixed message, part of the wire.
    `(?<![${base64urlChar}])(?<!"value":")(?<random>[${base64urlChar}]{43}|[${base64urlChar}]{32})(?![${base64urlChar}])`,
  ].join("|"),
  "g",
);

const decoder = new TextDecoder("utf-8", { fatal: true });

export class Normaliser {
  private readonly placeholders = new Map<string, string>();
  private readonly counters = new Map<string, number>();
  readonly jwts: Record<string, JwtShape> = {};

  constructor(
    /** Literal strings to replace as they are (e.g. the package version), with their placeholder. */
    private readonly literals: ReadonlyArray<[string, string]> = [],
  ) {}

  text(s: string): string {
    let out = s.replace(variable, (match, ...args) => {
      const groups = args.at(-1) as Record<string, string | undefined>;
      if (groups.jwt) return this.jwt(match);
      if (groups.pem) {
        const lines = groups.pemBody!.split("\n").map((l) => l.length);
        const body = this.placeholder("pem", groups.pemBody!, ` lines:${lines.join(",")}`);
        return `-----BEGIN ${groups.label}-----\n${body}\n-----END ${groups.label}-----`;
      }
      if (groups.apiToken) return this.placeholder("apitoken", match);
      if (groups.uuid) return this.placeholder("uuid", match);
      return this.placeholder(`rnd${match.length}`, match);
    });
    for (const [literal, name] of this.literals) out = out.split(literal).join(name);
    return out;
  }

  private placeholder(kind: string, value: string, suffix = ""): string {
    let p = this.placeholders.get(value);
    if (p === undefined) {
      const n = (this.counters.get(kind) ?? 0) + 1;
      this.counters.set(kind, n);
      p = `<${kind}#${n}${suffix}>`;
      this.placeholders.set(value, p);
    }
    return p;
  }

  private jwt(token: string): string {
    const known = this.placeholders.get(token);
    if (known !== undefined) return known;
    const p = this.placeholder("jwt", token);
    const [header, payload, signature] = token.split(".") as [string, string, string];
    this.jwts[p] = {
      header: this.text(base64urlText(header)),
      payload: this.text(base64urlText(payload)),
      signatureChars: signature.length,
    };
    return p;
  }
}

function base64urlText(part: string): string {
  try {
    return decoder.decode(Buffer.from(part, "base64url"));
  } catch {
    return `<not UTF-8: ${part.length} characters>`;
  }
}

/** Sends one request and reads the whole answer (HEAD: no body). */
export function send(baseUrl: string, req: WireRequest): Promise<WireAnswer & { raw: Buffer; rawHeaders: string[] }> {
  const url = new URL(baseUrl);
  const headers: Record<string, string> = { ...req.headers };
  const chunked = Object.entries(headers).some(([k, v]) => k.toLowerCase() === "transfer-encoding" && v === "chunked");
  if (req.body !== undefined && !chunked) headers["content-length"] = String(Buffer.byteLength(req.body));
  return new Promise((resolve, reject) => {
    const r = http.request(
      { host: url.hostname, port: url.port, method: req.method, path: req.path, headers, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          const raw = Buffer.concat(chunks);
          const text = raw.toString("utf8");
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            rawHeaders: res.rawHeaders,
            raw,
            text,
            json: () => JSON.parse(text),
          });
        });
        res.on("error", reject);
      },
    );
    r.on("error", reject);
    if (req.body !== undefined && chunked) {
      // Two chunks, so the server cannot learn the size up front.
      const half = Math.floor(req.body.length / 2);
      r.write(req.body.slice(0, half));
      r.end(req.body.slice(half));
    } else {
      r.end(req.body);
    }
  });
}

/** Runs requests against named servers and records each exchange, normalised. */
export class Recorder {
  readonly exchanges: Exchange[] = [];
  private readonly normaliser: Normaliser;
  /** Raw body of the last GET per server and request, for the Content-Length of a HEAD. */
  private readonly lastGet = new Map<string, { raw: Buffer; hasPlaceholder: boolean }>();
  /**
   * Entity tags by first appearance: a tag names the bytes of an answer, which hold random keys
   * or the package version, so it is a placeholder (`<etag#2>`), the same tag the same one.
   */
  private readonly etags = new Map<string, string>();

  constructor(
    private readonly urls: Record<string, string>,
    private readonly serverEnv: Record<string, Record<string, string>>,
    literals: ReadonlyArray<[string, string]> = [],
  ) {
    this.normaliser = new Normaliser(literals);
  }

  /** Sends the request and records the exchange under `step`. */
  async exchange(step: string, server: string, req: WireRequest): Promise<WireAnswer> {
    const base = this.urls[server];
    if (base === undefined) throw new Error(`no server ${server}`);
    const answer = await send(base, req);
    const n = this.normaliser;
    const requestHeaders: Record<string, string> = {};
    for (const k of Object.keys(req.headers ?? {}).sort()) requestHeaders[k.toLowerCase()] = this.etagsIn(n.text(req.headers![k]!));
    const request: Exchange["request"] = { method: req.method, path: n.text(req.path), headers: requestHeaders };
    if (req.body !== undefined) request.body = req.body.length > longBody ? `<${Buffer.byteLength(req.body)} bytes, sha256 ${sha256(req.body)}>` : n.text(req.body);

    const bodyText = bodyOf(answer.raw);
    const body = n.text(bodyText);
    const headers = this.responseHeaders(answer.rawHeaders, req, server, answer.status, answer.raw, body !== bodyText);
    this.exchanges.push({ step, server, request, response: { status: answer.status, headers, body } });
    if (req.method === "GET") this.lastGet.set(requestKey(server, req), { raw: answer.raw, hasPlaceholder: body !== bodyText });
    return answer;
  }

  /** Sends the request without recording it (waiting for a fire-and-forget write to land). */
  async unrecorded(server: string, req: WireRequest): Promise<WireAnswer> {
    return send(this.urls[server]!, req);
  }

  recording(): Recording {
    return { servers: this.serverEnv, exchanges: this.exchanges, jwts: this.normaliser.jwts };
  }

  /** `text` with every entity tag already seen as its placeholder (an If-None-Match). */
  private etagsIn(text: string): string {
    let out = text;
    for (const [tag, placeholder] of this.etags) out = out.split(tag).join(placeholder);
    return out;
  }

  private responseHeaders(rawHeaders: string[], req: WireRequest, server: string, status: number, raw: Buffer, bodyHasPlaceholder: boolean): Record<string, string | string[]> {
    const grouped = new Map<string, string[]>();
    for (let i = 0; i < rawHeaders.length; i += 2) {
      const name = rawHeaders[i]!.toLowerCase();
      if (ignoredResponseHeaders.has(name)) continue;
      grouped.set(name, [...(grouped.get(name) ?? []), rawHeaders[i + 1]!]);
    }
    const out: Record<string, string | string[]> = {};
    for (const name of [...grouped.keys()].sort()) {
      const values = grouped.get(name)!;
      if (name === "content-length") {
        out[name] = this.contentLength(values.join(","), req, server, status, raw, bodyHasPlaceholder);
        continue;
      }
      if (perRequestHeaders.has(name)) {
        out[name] = `<${name}>`;
        continue;
      }
      if (name === "etag") {
        const tags = values.map((v) => {
          if (!this.etags.has(v)) this.etags.set(v, `<etag#${this.etags.size + 1}>`);
          return this.etags.get(v)!;
        });
        out[name] = tags.length === 1 ? tags[0]! : tags;
        continue;
      }
      const normalised = values.map((v) => this.normaliser.text(v));
      out[name] = normalised.length === 1 ? normalised[0]! : normalised;
    }
    return out;
  }

  /**
   * The Content-Length as is when the body has no placeholder; otherwise whether it is the
   * body's real length (placeholders change the length of the recorded text). A HEAD answered
   * as its GET (a success) is measured against the body of the last identical GET; a HEAD
   * refused (405 where the GET has side effects) is the length of its own error body, as is.
   */
  private contentLength(value: string, req: WireRequest, server: string, status: number, raw: Buffer, bodyHasPlaceholder: boolean): string {
    let body = raw;
    let hasPlaceholder = bodyHasPlaceholder;
    let what = "body";
    if (req.method === "HEAD" && status < 300) {
      const get = this.lastGet.get(requestKey(server, { ...req, method: "GET" }));
      if (get === undefined) return value;
      body = get.raw;
      hasPlaceholder = get.hasPlaceholder;
      what = "GET body";
    }
    if (!hasPlaceholder) return value;
    return value === String(body.length) ? `<length of ${what}>` : `<${value}, not the length of ${what} (${body.length})>`;
  }
}

function requestKey(server: string, req: WireRequest): string {
  return JSON.stringify([server, req.method, req.path, req.headers ?? {}, req.body ?? null]);
}

function bodyOf(raw: Buffer): string {
  try {
    return decoder.decode(raw);
  } catch {
    return `<not UTF-8, base64: ${raw.toString("base64")}>`;
  }
}

function sha256(s: string): string {
  return createHash("sha256").update(s, "utf8").digest("hex");
}
