// The credentials a seed 003 authentication token, and the cookie session its exchange starts,
// come from: "session:<id>" (a seed 000 session) or "user_token:<id>" (a seed 002 user token or a
// cookie session). Neither outlives them: the token is dead once the credential it was made from
// has ended, and a cookie session records every credential it descends from (the exchanged
// token's, then those that one descends from in turn) and ends once one of them has ended. A
// credential ends when it is ended or logged out, expires, or is deleted (housekeeping deletes
// only what has ended).
import type { SessionStore } from "../store/ports/sessions.js";
import type { UserTokenStore } from "../store/ports/user-tokens.js";

/**
 * Most credentials a cookie session descends from. Every use of one reads each of them, and each
 * exchange from a cookie session adds one: unbounded, a user's chain of exchanges made each of
 * their calls cost the store as many reads as they liked. A token whose exchange would start a
 * session descending from more is not exchanged (dead, as one whose source has ended).
 */
export const MAX_SOURCES = 16;

/** Where the credentials sources name are looked up. */
export interface CredentialSourceStores {
  sessions: Pick<SessionStore, "findById">;
  userTokens: Pick<UserTokenStore, "findById">;
}

/** A live source: when it ends (undefined: never, a user token without expiry), and what it descends from in turn. */
export interface LiveSource {
  end: Date | undefined;
  sources: readonly string[];
}

/** The credential `source` names while it is live at `now`; null once it has ended, or for a name of no known kind. */
export async function liveSource(stores: CredentialSourceStores, source: string, now: Date): Promise<LiveSource | null> {
  const colon = source.indexOf(":");
  const kind = source.slice(0, colon);
  const id = source.slice(colon + 1);
  if (kind === "session") {
    const session = await stores.sessions.findById(id);
    if (session === null || session.endedAt !== undefined || session.expiresAt.getTime() <= now.getTime()) return null;
    return { end: session.expiresAt, sources: [] };
  }
  if (kind === "user_token") {
    const token = await stores.userTokens.findById(id);
    if (token === null || !token.enabled || (token.expiresAt !== undefined && token.expiresAt.getTime() <= now.getTime())) return null;
    return { end: token.expiresAt, sources: token.sources ?? [] };
  }
  return null;
}

/** Whether every credential of `sources` is still live at `now` (looked up together). */
export async function sourcesLive(stores: CredentialSourceStores, sources: readonly string[] | undefined, now: Date): Promise<boolean> {
  if (sources === undefined || sources.length === 0) return true;
  const found = await Promise.all(sources.map((source) => liveSource(stores, source, now)));
  return found.every((live) => live !== null);
}
