// Caps on the live credentials one user holds (sessions, seed 004 refresh tokens, user tokens
// with cookie sessions): a creation given a cap ends the user's oldest beyond it, and answers
// the ids of those it ended (the core records an audit event for each).

/**
 * At most this many credentials one creation ends: a user far over a cap that was lowered is
 * brought down by at most this many a login, so that no one login pays for the whole backlog.
 */
export const CAP_BATCH = 100;

/** A creation of a capped credential: the record stored, and the ids of the user's credentials it ended. */
export interface Capped<T> {
  record: T;
  /** Ids (session ids, jtis, user token ids) of the live credentials the cap ended: at most CAP_BATCH. */
  ended: string[];
}

/**
 * The user tokens and cookie sessions (their ids) a new cookie session descends from, of its
 * `sources` ("user_token:<id>"; core/credential-sources.ts): the cap on user tokens never ends
 * them, since the new session would end with them, and they take places of the cap beside it.
 */
export function userTokenSources(sources: readonly string[] | undefined): string[] {
  const prefix = "user_token:";
  return (sources ?? []).filter((source) => source.startsWith(prefix)).map((source) => source.slice(prefix.length));
}

/**
 * The sessions a creation deletes, of `pastCap` (the ids of the user's oldest past the cap, as
 * many as are to go, ended or not) and `ended` (ids of the user's ended ones, at most as many):
 * every ended one first, then the oldest of the others for the places still wanted. A logged-out
 * session never keeps its place while a live one loses its own.
 */
export function endedFirst(pastCap: readonly string[], ended: readonly string[]): string[] {
  const first = ended.slice(0, pastCap.length);
  return [...first, ...pastCap.filter((id) => !first.includes(id)).slice(0, pastCap.length - first.length)];
}
