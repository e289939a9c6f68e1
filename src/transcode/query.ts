import { decodeQueryComponent } from "./percent.js";

/** One decoded `key=value` pair of a query string or a form-encoded body. */
export interface Argument {
  readonly key: string;
  readonly value: string;
}

/**
 * Splits and decodes `a=1&b.c=x+y&t=1&t=2`. Keys without "=" get an empty value; empty pairs
 * ("&&") are skipped. A malformed escape is a 400 naming the parameter.
 */
export function parseArguments(raw: string, into: Argument[] = []): Argument[] {
  if (raw === "") {
    return into;
  }
  for (const pair of raw.split("&")) {
    if (pair === "") {
      continue;
    }
    const eq = pair.indexOf("=");
    const rawKey = eq < 0 ? pair : pair.slice(0, eq);
    const key = decodeQueryComponent(rawKey, JSON.stringify(rawKey));
    const value = eq < 0 ? "" : decodeQueryComponent(pair.slice(eq + 1), JSON.stringify(key));
    into.push({ key, value });
  }
  return into;
}
