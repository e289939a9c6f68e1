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
  const written = /^mongodb(?:\+srv)?:\/\/[^/?@]*?:([^/?]*)@/.exec(uri)?.[1];
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
