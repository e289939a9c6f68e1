/** The database a MongoDB connection string names ("mongodb://host/db?..."), if any. */
export function databaseInUri(uri: string): string | undefined {
  const name = /^mongodb(?:\+srv)?:\/\/[^/?]*\/([^?]+)/.exec(uri)?.[1];
  return name ? decodeURIComponent(name) : undefined;
}

/**
 * The password a MongoDB connection string carries ("mongodb://user:password@host/..."), as
 * written and percent-decoded, to keep out of what is written down; none: [].
 */
export function passwordsInUri(uri: string): string[] {
  const written = writtenPassword(uri);
  if (!written) return [];
  let decoded = written;
  try {
    decoded = decodeURIComponent(written);
  } catch {
    // not percent-encoding: only as written
  }
  return decoded === written ? [written] : [written, decoded];
}

/** `text` with the password of `uri` (passwordsInUri) replaced by <hidden>. */
export function withoutPassword(text: string, uri: string): string {
  return passwordsInUri(uri).reduce((t, password) => t.replaceAll(password, "<hidden>"), text);
}

/**
 * In what follows the scheme, up to the first "/" or "?": from the first ":", if no "@" comes
 * before it, to the last "@". Linear in the URI's length: /^mongodb(?:\+srv)?:\/\/[^/?@]*?:([^/?]*)@/,
 * which says the same, tried each ":" with the rest of the authority when no "@" followed, time
 * quadratic in a run of ":" (64 Ki of them in MONGODB_URI: seconds before a start said anything).
 */
function writtenPassword(uri: string): string | undefined {
  const scheme = /^mongodb(?:\+srv)?:\/\//.exec(uri)?.[0];
  if (scheme === undefined) return undefined;
  const authority = uri.slice(scheme.length).split(/[/?]/, 1)[0]!;
  const colon = authority.indexOf(":");
  const firstAt = authority.indexOf("@");
  if (colon < 0 || firstAt < colon) return undefined;
  return authority.slice(colon + 1, authority.lastIndexOf("@"));
}
