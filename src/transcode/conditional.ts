// Conditional GET for answers a cache may keep (RFC 9110 8.8.3, 13.1.2, 15.4.5): a strong entity
// tag computed from the bytes of the representation sent, so that another representation (other
// bytes: another content coding, another message encoding) has another tag; and If-None-Match
// answered 304 Not Modified when it names that tag (weak comparison) or is "*".
import * as crypto from "node:crypto";

// crypto.hash (Node 20.12 and later) digests in one call, making no Hash object: a cacheable
// GET (the no-op /jwt/version among them) tags every answer, and this took 1.07 us a tag against
// 0.23 us here. createHash where it is missing.
const oneShot = typeof crypto.hash === "function";

/** A strong entity tag of a representation's bytes: 162 bits of SHA-256 in base64url, quoted. */
export function entityTag(body: Uint8Array | string): string {
  const digest = oneShot ? crypto.hash("sha256", body, "base64url") : crypto.createHash("sha256").update(body).digest("base64url");
  return `"${digest.slice(0, 27)}"`;
}

/**
 * Whether an answer with this Cache-Control may be stored by a cache, and so gets a validator:
 * set by its handler, and without no-store. An answer holding a credential or a user's data is
 * no-store (it gets no tag: a tag would name its bytes, and a 304 would confirm a guess of them).
 */
export function storable(cacheControl: string | readonly string[] | null | undefined): boolean {
  if (cacheControl === undefined || cacheControl === null) return false;
  const value = typeof cacheControl === "string" ? cacheControl : cacheControl.join(",");
  return value.trim() !== "" && !/(?:^|,)[ \t]*no-store[ \t]*(?:[,=]|$)/i.test(value);
}

/** One entity-tag (RFC 9110 8.8.3): an optional W/, then the opaque tag, quotes included. */
const entityTagItem = /(?:W\/)?("[\x21\x23-\x7e\x80-\xff]*")/y;

/**
 * Whether If-None-Match `header` fails for the current representation, tagged `tag`: it is "*",
 * or a list naming `tag` by weak comparison (the opaque tags equal, W/ or not). For GET and HEAD
 * such a request is answered 304. A field value that is no such list is ignored (false).
 */
export function noneMatch(header: string | readonly string[] | undefined, tag: string): boolean {
  if (header === undefined) return false;
  const value = (typeof header === "string" ? header : header.join(",")).trim();
  if (value === "*") return true;
  const opaque = tag.startsWith("W/") ? tag.slice(2) : tag;
  let matched = false;
  let i = 0;
  // A list with empty elements allowed (RFC 9110 5.6.1): entity-tags separated by commas and
  // optional white space.
  while (i < value.length) {
    const c = value[i]!;
    if (c === "," || c === " " || c === "\t") {
      i++;
      continue;
    }
    entityTagItem.lastIndex = i;
    const m = entityTagItem.exec(value);
    if (!m) return false;
    if (m[1] === opaque) matched = true;
    i = entityTagItem.lastIndex;
    // After an entity-tag: white space, then a comma or the end.
    while (value[i] === " " || value[i] === "\t") i++;
    if (i < value.length && value[i] !== ",") return false;
  }
  return matched;
}
