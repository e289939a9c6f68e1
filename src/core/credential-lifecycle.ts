// What happens to a user's credentials when the user's standing changes. Identity code (Users)
// records the change — a new password, a deactivation — and tells this component, which ends
// the credentials it outdates; Users itself never reaches into sessions or tokens.
//
// - A password change outdates every long-lived credential issued before it: seed 000 sessions
//   (and with them their refresh tokens) end and seed 004 refresh tokens are revoked here; user
//   tokens and cookie sessions are refused by their verifiers through issuedBeforePasswordChange.
//   Short-lived access JWTs run out on their own (offline verifiers could not be told anyway).
// - A deactivation ends everything: sessions, user tokens and cookie sessions, refresh tokens.
//
// Both cascades are idempotent, so repeating one finishes what an interrupted one left. A
// password change or deactivation whose cascade fails is answered as made (Users.changePassword,
// Users.deactivate): the change's own write (the epoch moved, the user inactive) already refuses
// what the cascade did not end.
//
// The cascades alone cannot end a credential whose login was in flight during the change (its
// write lands after the sweep). The credential epoch closes that from both sides: the store
// moves the user's epoch in the same write as the change (UserRecord.credentialEpoch); every
// credential records the epoch of the user as its login read it; the issuer reads the user
// again after writing the credential and withdraws it if the epoch moved (`credentialState`),
// and every use refuses a credential whose epoch is no longer the user's (`outdated`). Nothing
// caches the epoch: every check reads the user.
import type { JwtRefreshTokenStore } from "../store/ports/jwt-refresh-tokens.js";
import type { SessionStore } from "../store/ports/sessions.js";
import type { UserTokenStore } from "../store/ports/user-tokens.js";
import type { UserRecord } from "../store/ports/users.js";

export interface CredentialLifecycleDeps {
  sessions: Pick<SessionStore, "endAllForUser">;
  userTokens: Pick<UserTokenStore, "disableAllForUser">;
  jwtRefreshTokens: Pick<JwtRefreshTokenStore, "revokeAllForUser">;
}

/** True when a credential issued at `issuedAt` predates the user's last password change: refuse it. */
export function issuedBeforePasswordChange(issuedAt: Date, user: Pick<UserRecord, "passwordChangedAt">): boolean {
  return issuedAt.getTime() < user.passwordChangedAt.getTime();
}

/**
 * True when a credential of an (active) user is outdated: issued under another credential epoch
 * than the user's, or, for a record written before epochs existed, before the last password
 * change.
 */
export function outdated(
  credential: { credentialEpoch?: number | undefined },
  issuedAt: Date,
  user: Pick<UserRecord, "passwordChangedAt" | "credentialEpoch">,
): boolean {
  if (credential.credentialEpoch !== undefined) return credential.credentialEpoch !== user.credentialEpoch;
  return issuedBeforePasswordChange(issuedAt, user);
}

/** Where a user stands against a credential epoch: still current, moved on (a password change), or deactivated. */
export type CredentialState = "current" | "changed" | "deactivated";

export function credentialStateOf(user: Pick<UserRecord, "active" | "credentialEpoch"> | null, epoch: number): CredentialState {
  if (user === null || !user.active) return "deactivated";
  return user.credentialEpoch === epoch ? "current" : "changed";
}

export class CredentialLifecycle {
  constructor(private readonly deps: CredentialLifecycleDeps) {}

  /**
   * The user's password changed at `changedAt`, moving their credential epoch to `epoch`: ends
   * the sessions and refresh tokens it outdated (not those of a login with the new password made
   * meanwhile, on any instance: told apart by epoch, not by time, see PasswordChange).
   */
  async passwordChanged(userId: string, changedAt: Date, epoch: number): Promise<void> {
    const change = { epoch, changedAt };
    await Promise.all([
      this.deps.sessions.endAllForUser(userId, changedAt, change),
      this.deps.jwtRefreshTokens.revokeAllForUser(userId, changedAt, change),
    ]);
  }

  /** The user was deactivated at `at`: ends every session, user token, cookie session and refresh token. */
  async deactivated(userId: string, at: Date): Promise<void> {
    await Promise.all([
      this.deps.sessions.endAllForUser(userId, at),
      this.deps.userTokens.disableAllForUser(userId, at),
      this.deps.jwtRefreshTokens.revokeAllForUser(userId, at),
    ]);
  }
}
