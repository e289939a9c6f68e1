import { badRequest, quotedName, violatedName, type HttpError } from "./http-error.js";
import { decodeQueryComponent } from "./percent.js";
import { credentialShaped } from "../credential-shapes.js";

/** One decoded `key=value` pair of a query string or a form-encoded body. */
export interface Argument {
  readonly key: string;
  readonly value: string;
  /** A field of a form body (loose arguments), not a query parameter: errors call it so. */
  readonly form?: true;
}

/** What an error calls an argument: `query parameter`, `form field`, or (loose arguments) `JSON body field`. */
export function argumentNoun(arg: { readonly form?: true; readonly json?: true }): string {
  return arg.json ? "JSON body field" : arg.form ? "form field" : "query parameter";
}

/** Most arguments (query parameters plus form fields) one request may carry. */
export const maxArguments = 100;

/** The 400 of a request with more than `maxArguments` arguments. */
export function tooManyArguments(): HttpError {
  return badRequest("TOO_MANY_QUERY_PARAMETERS", `too many query parameters: at most ${maxArguments} are accepted`);
}

/**
 * Splits and decodes `a=1&b.c=x+y&t=1&t=2` (a query, or with `form` a form body). Keys without
 * "=" get an empty value; empty pairs ("&&") are skipped. A malformed escape is a 400 naming the
 * parameter (quoted as quotedName quotes it, `hidden`: see unquotable); more than
 * `maxArguments` in all is a 400 naming the limit (checked before any decoding).
 */
export function parseArguments(raw: string, into: Argument[] = [], form = false, hidden: (text: string) => boolean = credentialShaped): Argument[] {
  if (raw === "") {
    return into;
  }
  const pairs = raw.split("&");
  if (into.length + pairs.filter((p) => p !== "").length > maxArguments) {
    throw tooManyArguments();
  }
  for (const pair of pairs) {
    if (pair === "") {
      continue;
    }
    const eq = pair.indexOf("=");
    const rawKey = eq < 0 ? pair : pair.slice(0, eq);
    const noun = form ? "form field" : "query parameter";
    const key = decodeQueryComponent(rawKey, () => [`${noun} ${quotedName(rawKey, hidden)}`, violatedName(rawKey, hidden)]);
    const value = eq < 0 ? "" : decodeQueryComponent(pair.slice(eq + 1), () => [`${noun} ${quotedName(key, hidden)}`, violatedName(key, hidden)]);
    into.push(form ? { key, value, form } : { key, value });
  }
  return into;
}
