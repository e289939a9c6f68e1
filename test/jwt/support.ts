// Helpers for the seed 004 suites: one HTTP call in each of the document's three argument
// styles (JSON body, form body, query string), and JWT crafting for the attack cases.
import http from "node:http";
import { randomBytes } from "node:crypto";
import { decodeJwt, decodeProtectedHeader } from "jose";

export type ArgStyle = "json" | "form" | "query";
export const argStyles: readonly ArgStyle[] = ["json", "form", "query"];

export interface HttpAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
  /** Parsed when the answer is JSON. */
  body: any;
}

/**
 * One request with `args` sent in `style`. node:http rather than fetch, because the document
 * allows a JSON or form body on GET, which fetch refuses to send.
 */
export function call(
  baseUrl: string,
  method: string,
  path: string,
  args: Record<string, string> = {},
  opts: { style?: ArgStyle; headers?: Record<string, string> } = {},
): Promise<HttpAnswer> {
  const style = opts.style ?? "json";
  const headers: Record<string, string> = { ...opts.headers };
  let body: string | undefined;
  let target = path;
  const hasArgs = Object.keys(args).length > 0;
  if (style === "query" && hasArgs) target += `?${new URLSearchParams(args).toString()}`;
  if (style === "json" && hasArgs) {
    body = JSON.stringify(args);
    headers["content-type"] = "application/json";
  }
  if (style === "form" && hasArgs) {
    body = new URLSearchParams(args).toString();
    headers["content-type"] = "application/x-www-form-urlencoded";
  }
  if (body !== undefined) headers["content-length"] = String(Buffer.byteLength(body));
  const url = new URL(target, baseUrl);
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        const text = Buffer.concat(chunks).toString("utf8");
        let parsed: unknown = text;
        if ((res.headers["content-type"] ?? "").includes("json") && text.length > 0) parsed = JSON.parse(text);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, body: parsed });
      });
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end(body);
  });
}

export const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

/** A user name no other test uses. */
export function uniqueUser(prefix = "user"): string {
  return `${prefix}-${randomBytes(5).toString("hex")}`;
}

/** A password that passes the policy. */
export const goodPassword = "correct horse battery staple";
export const otherGoodPassword = "tr0ubador & a second staple";

export function b64url(value: unknown): string {
  return Buffer.from(typeof value === "string" ? value : JSON.stringify(value)).toString("base64url");
}

/** Re-encodes a token with a changed payload, keeping header and signature (tampering). */
export function withPayload(token: string, change: (p: Record<string, unknown>) => Record<string, unknown>): string {
  const [h, , s] = token.split(".");
  return `${h}.${b64url(change(decodeJwt(token) as Record<string, unknown>))}.${s}`;
}

/** The same claims with `alg: none` and no signature. */
export function algNone(token: string): string {
  const header = { ...decodeProtectedHeader(token), alg: "none" };
  return `${b64url(header)}.${token.split(".")[1]}.`;
}

export function nowSeconds(at = Date.now()): number {
  return Math.floor(at / 1000);
}
