// A compact JWS taken apart before any key is looked at. Only the header is decoded here; the
// payload is decoded after the signature has verified.
//
// Strict where Node is lenient: Buffer.from(s, "base64url") skips characters outside the
// alphabet and ignores the unused low bits of the last character, so every segment is checked
// against the alphabet, and the signature must be spelled canonically (one token, one spelling,
// as Tessera itself requires). A header or payload naming a member twice is refused, as Tessera
// refuses it (json-keys.ts): JSON.parse keeps the last, a reader in front may take the first.
import { refuse } from "./errors.js";
import { repeatedMember } from "./json-keys.js";

/** The header members a Tessera token may carry and the verifier reads. */
export interface JwsHeader {
  readonly alg: string;
  readonly kid: string;
  /** As the header gives it (any JSON value), checked once the signature has verified: checkType. */
  readonly typ?: unknown;
}

export interface CompactJws {
  readonly header: JwsHeader;
  /** `<header>.<payload>`, the bytes the signature covers (ASCII). */
  readonly signingInput: Buffer;
  readonly payloadSegment: string;
  readonly signature: Buffer;
}

/** Far above any token Tessera issues (a few hundred bytes); bounds the work on hostile input. */
export const MAX_TOKEN_LENGTH = 8192;

const segment = /^[A-Za-z0-9_-]+$/;
/** Headers that point at other keys or demand extensions: a Tessera token has none of them. */
export const refusedHeaders = ["crit", "jku", "x5u", "jwk", "x5c", "x5t", "x5t#S256", "b64"] as const;

/**
 * Parsed headers by their text: tokens signed by one key share one header, so a verifier keeps
 * a few (its own map: parsing is deterministic, the map only saves the work).
 */
export type HeaderCache = Map<string, JwsHeader>;
const maxParsedHeaders = 32;

export function parseCompactJws(token: unknown, parsedHeaders: HeaderCache = new Map()): CompactJws {
  if (typeof token !== "string" || token.length === 0) throw refuse("MALFORMED_TOKEN", "the token is empty");
  if (token.length > MAX_TOKEN_LENGTH) throw refuse("MALFORMED_TOKEN", `the token is longer than ${MAX_TOKEN_LENGTH} characters`);
  const first = token.indexOf(".");
  const second = first < 0 ? -1 : token.indexOf(".", first + 1);
  if (second < 0 || token.indexOf(".", second + 1) >= 0) throw refuse("MALFORMED_TOKEN", "the token is not a compact JWS (three dot-separated parts)");
  const headerSegment = token.slice(0, first);
  const payloadSegment = token.slice(first + 1, second);
  const signatureSegment = token.slice(second + 1);
  if (!segment.test(headerSegment) || !segment.test(payloadSegment) || !segment.test(signatureSegment)) {
    throw refuse("MALFORMED_TOKEN", "the token is not base64url");
  }
  const signature = Buffer.from(signatureSegment, "base64url");
  if (signature.toString("base64url") !== signatureSegment) throw refuse("MALFORMED_TOKEN", "the token's signature is not canonical base64url");
  return {
    header: header(headerSegment, parsedHeaders),
    signingInput: Buffer.from(token.slice(0, second), "latin1"),
    payloadSegment,
    signature,
  };
}

function header(headerSegment: string, parsedHeaders: HeaderCache): JwsHeader {
  const known = parsedHeaders.get(headerSegment);
  if (known) return known;
  const value = decodeJson(headerSegment, "header");
  for (const name of refusedHeaders) {
    if (name in value) throw refuse("MALFORMED_TOKEN", `the token header "${name}" is not accepted`);
  }
  const { alg, kid, typ } = value;
  if (typeof alg !== "string" || alg === "") throw refuse("MALFORMED_TOKEN", 'the token header has no "alg"');
  if (typeof kid !== "string" || kid === "") throw refuse("MALFORMED_TOKEN", 'the token header has no "kid"');
  const parsed: JwsHeader = Object.freeze({ alg, kid, ...(typ !== undefined && { typ }) });
  if (parsedHeaders.size >= maxParsedHeaders) parsedHeaders.clear();
  parsedHeaders.set(headerSegment, parsed);
  return parsed;
}

/**
 * Refuses a header whose `typ` is not "JWT", or that has none: every token Tessera signs is
 * typed "JWT", and Tessera refuses any other (RFC 8725 3.11). Compared as RFC 7515 4.1.9 compares
 * it, a media type: case aside, "application/" omitted. Called after the signature, as Tessera
 * does: a token of a key not in the set is UNKNOWN_KEY whatever its type.
 */
export function checkType(header: JwsHeader): void {
  const { typ } = header;
  if (typ === undefined) throw refuse("MALFORMED_TOKEN", 'the token header has no "typ" (it must be "JWT")');
  if (typeof typ !== "string" || typ.toLowerCase().replace(/^application\//, "") !== "jwt") throw refuse("MALFORMED_TOKEN", 'the token header "typ" is not "JWT"');
}

/** A base64url segment holding a JSON object, each of whose objects names each member once. */
export function decodeJson(seg: string, what: "header" | "payload"): Record<string, unknown> {
  const text = Buffer.from(seg, "base64url").toString("utf8");
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw refuse("MALFORMED_TOKEN", `the token ${what} is not JSON`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw refuse("MALFORMED_TOKEN", `the token ${what} is not a JSON object`);
  const path = repeatedMember(text);
  if (path !== undefined) {
    // Named when each name is a plain word (the text is the caller's, unverified for a header).
    const name = path.every((n) => /^[\w-]{1,64}$/.test(n)) ? `member "${path.join(".")}"` : "a member";
    throw refuse("MALFORMED_TOKEN", `the token ${what} names ${name} more than once`);
  }
  return value as Record<string, unknown>;
}
