import { withoutTrailingSlashes } from "../core/text.js";

export interface CorsOptions {
  /** Methods a preflight allows; default GET, POST, PUT, PATCH, DELETE. */
  allowedMethods?: readonly string[];
  /**
   * Request headers a preflight allows. Unset: the headers the preflight asks for are allowed
   * as asked (Access-Control-Request-Headers echoed, and Vary names it).
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
    const allowed = this.allowedHeaders ?? requestHeaders;
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
