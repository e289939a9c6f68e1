import { withoutTrailingSlashes } from "../core/text.js";

export interface CorsOptions {
  /** Methods a preflight allows; default GET, POST, PUT, PATCH, DELETE. */
  allowedMethods?: readonly string[];
  /**
   * Request headers a preflight allows. Unset: the headers the preflight asks for are allowed
   * as asked, when Access-Control-Request-Headers is a list a browser sends (askedHeaders: at
   * most 32 header names, each a token of at most 64 characters), answered lower-cased, each
   * once; Vary names Access-Control-Request-Headers. Any other list is allowed none.
   */
  allowedHeaders?: readonly string[];
  /** Response headers scripts may read (Access-Control-Expose-Headers); default WWW-Authenticate and Retry-After. */
  exposedHeaders?: readonly string[];
  /** How long a browser may cache a preflight answer; default 7200 s. */
  maxAgeSeconds?: number;
}

const defaultMethods = ["GET", "POST", "PUT", "PATCH", "DELETE"];
const defaultExposed = ["www-authenticate", "retry-after"];

/** Names as one comma list: lower-cased, each once, in the order given. */
function headerList(names: readonly string[]): string {
  return [...new Set(names.map((n) => n.toLowerCase()))].join(", ");
}

/** Most header names, and longest name, a preflight's Access-Control-Request-Headers is answered for. */
export const askedHeadersMax = 32;
export const askedHeaderNameMax = 64;

/** A field name (RFC 9110 5.1: a token), at most askedHeaderNameMax characters. */
const headerName = new RegExp(`^[!#$%&'*+.^_\`|~0-9A-Za-z-]{1,${askedHeaderNameMax}}$`);

/** `text` without the spaces and tabs around it (read from each end: no expression backtracks over a run of them). */
function withoutWhiteSpace(text: string): string {
  const blank = (i: number) => text.charCodeAt(i) === 0x20 || text.charCodeAt(i) === 0x09;
  let start = 0;
  let end = text.length;
  while (start < end && blank(start)) start++;
  while (end > start && blank(end - 1)) end--;
  return text.slice(start, end);
}

/**
 * The headers a preflight's Access-Control-Request-Headers asks for, as one comma list
 * (headerList), when it is a list a browser sends (Fetch: the request's header names, lower-cased,
 * joined with ","): field names separated by commas, optional white space around each, empty
 * elements skipped (RFC 9110 5.6.1), at most askedHeadersMax of them. Undefined for any other
 * value (a name that is no token, such as one holding a control character, a space, a quote or
 * a byte past ASCII; a "*", which an answer would read as every header; too many or too long
 * names), which is then allowed no header: no answer repeats what no browser sends, nor grows
 * with the request.
 */
export function askedHeaders(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const names: string[] = [];
  for (const element of value.split(",")) {
    const name = withoutWhiteSpace(element);
    if (name === "") continue;
    if (name === "*" || !headerName.test(name) || names.length === askedHeadersMax) return undefined;
    names.push(name);
  }
  return names.length === 0 ? undefined : headerList(names);
}

/**
 * CORS for configured web origins. A preflight (OPTIONS with Origin and
 * Access-Control-Request-Method) is answered before routing; other responses to an allowed
 * origin carry Access-Control-Allow-Origin and expose their headers. Every response of an
 * enabled Cors depends on the request's Origin, so every one should carry `Vary: Origin`
 * (`vary`), allowed origin or not.
 */
export class Cors {
  private readonly any: boolean;
  private readonly origins: ReadonlySet<string>;
  private readonly methods: string;
  private readonly allowedHeaders: string | undefined;
  private readonly exposed: string;
  private readonly maxAge: string;

  constructor(origins: readonly string[], options: CorsOptions = {}) {
    this.any = origins.includes("*");
    this.origins = new Set(origins.map((o) => withoutTrailingSlashes(o).toLowerCase()));
    this.methods = (options.allowedMethods ?? defaultMethods).join(", ");
    this.allowedHeaders = options.allowedHeaders && headerList(options.allowedHeaders);
    this.exposed = headerList(options.exposedHeaders ?? defaultExposed);
    this.maxAge = String(options.maxAgeSeconds ?? 7200);
  }

  get enabled(): boolean {
    return this.origins.size > 0;
  }

  /** The Vary value every response carries while CORS is enabled. */
  get vary(): string {
    return this.allowedHeaders === undefined ? "Origin, Access-Control-Request-Headers" : "Origin";
  }

  allows(origin: string): boolean {
    return this.any || this.origins.has(origin.toLowerCase());
  }

  /** True for a CORS preflight: OPTIONS with Origin and Access-Control-Request-Method. */
  static isPreflight(method: string | undefined, headers: { origin?: string; "access-control-request-method"?: string }): boolean {
    return method === "OPTIONS" && headers.origin !== undefined && headers["access-control-request-method"] !== undefined;
  }

  /** Headers for the preflight answer of an allowed origin. */
  preflightHeaders(origin: string, requestHeaders: string | undefined): Record<string, string> {
    const h: Record<string, string> = {
      ...this.allowOrigin(origin),
      "access-control-allow-methods": this.methods,
      "access-control-max-age": this.maxAge,
      vary: this.vary,
    };
    const allowed = this.allowedHeaders ?? askedHeaders(requestHeaders);
    if (allowed) {
      h["access-control-allow-headers"] = allowed;
    }
    return h;
  }

  /** Headers for an actual response to an allowed origin. */
  originHeaders(origin: string): Record<string, string> {
    return { ...this.allowOrigin(origin), "access-control-expose-headers": this.exposed, vary: this.vary };
  }

  private allowOrigin(origin: string): Record<string, string> {
    // A wildcard never goes with credentials.
    return this.any ? { "access-control-allow-origin": "*" } : { "access-control-allow-origin": origin, "access-control-allow-credentials": "true" };
  }
}
