/**
 * CORS for configured web origins. A preflight (OPTIONS with Origin and
 * Access-Control-Request-Method) is answered before routing; other responses to an allowed
 * origin carry Access-Control-Allow-Origin and expose their headers.
 */
export class Cors {
  private readonly any: boolean;
  private readonly origins: ReadonlySet<string>;

  constructor(origins: readonly string[]) {
    this.any = origins.includes("*");
    this.origins = new Set(origins.map((o) => o.replace(/\/+$/, "").toLowerCase()));
  }

  get enabled(): boolean {
    return this.origins.size > 0;
  }

  allows(origin: string): boolean {
    return this.any || this.origins.has(origin.toLowerCase());
  }

  /** Headers for the preflight answer of an allowed origin. */
  preflightHeaders(origin: string, requestHeaders: string | undefined): Record<string, string> {
    const h: Record<string, string> = {
      ...this.originHeaders(origin),
      "access-control-allow-methods": "GET, POST, PUT, PATCH, DELETE",
      "access-control-max-age": "7200",
    };
    if (requestHeaders) {
      h["access-control-allow-headers"] = requestHeaders;
    }
    return h;
  }

  /** Headers for an actual response to an allowed origin. */
  originHeaders(origin: string): Record<string, string> {
    if (this.any) {
      // A wildcard never goes with credentials.
      return { "access-control-allow-origin": "*" };
    }
    return {
      "access-control-allow-origin": origin,
      "access-control-allow-credentials": "true",
      vary: "Origin",
    };
  }
}
