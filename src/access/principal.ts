// Who is calling: the typed result of credential verification, handed to handlers.
export interface SessionPrincipal {
  readonly kind: "session";
  readonly clientId: string;
  readonly userId: string;
  readonly sessionId: string;
  /** jti of the presented access token. */
  readonly jti: string;
  /** When the presented access token expires (may be past for RefreshSession). */
  readonly expiresAt: Date;
  /** When the session ends: nothing made from it outlives it. */
  readonly sessionExpiresAt: Date;
  /** The user's credential epoch (see JwtPrincipal). */
  readonly credentialEpoch: number;
  /** The kid of the presented access token (see JwtPrincipal.keyIds). */
  readonly keyIds: readonly string[];
}

export interface ApiTokenPrincipal {
  readonly kind: "api_token";
  readonly accountId: string;
  readonly tokenLink: string;
}

export interface UserTokenPrincipal {
  readonly kind: "user_token";
  readonly userId: string;
  readonly tokenId: string;
  /** The user's credential epoch (see JwtPrincipal). */
  readonly credentialEpoch: number;
  /** When the token expires (none: never): nothing made from it outlives it. */
  readonly expiresAt?: Date;
}

export interface JwtPrincipal {
  readonly kind: "jwt";
  readonly userId: string;
  /** The verified claims of the access token. */
  readonly claims: Readonly<Record<string, unknown>>;
  readonly authenticationMethod: "password" | "refresh_token";
  /** When the access token expires (its `exp`): nothing made from it outlives it. */
  readonly expiresAt: Date;
  /**
   * The user's credential epoch the credential was issued under. Sessions, user tokens and
   * cookie sessions are refused once it is outdated, so theirs is the user's current one; an
   * access JWT stays valid until it expires and may carry an older one: it then mints nothing.
   */
  readonly credentialEpoch: number;
  /** The user's credential epoch as the check read it (other credentials are refused when theirs differs). */
  readonly userCredentialEpoch: number;
  /**
   * The kids of the signing keys the credential rests on: the access token's own, and those of
   * the tokens it was made from (a refresh token, and the access token that one was minted
   * with). What is made with it records them and ends once one of them is revoked.
   */
  readonly keyIds: readonly string[];
}

/** The seed 003 session cookie: accepted on safe methods only. */
export interface CookiePrincipal {
  readonly kind: "cookie";
  readonly userId: string;
  readonly sessionId: string;
  /** The user's credential epoch (see JwtPrincipal). */
  readonly credentialEpoch: number;
  /** When the cookie session ends: nothing started from it outlives it. */
  readonly expiresAt: Date;
  /** The kids of the signing keys of the tokens it descends from (see JwtPrincipal.keyIds). */
  readonly keyIds: readonly string[];
}

/** HTTP Basic credentials, parsed but not yet verified: the handler logs in with them. */
export interface BasicPrincipal {
  readonly kind: "basic";
  readonly login: string;
  readonly password: string;
}

export interface ClientPrincipal {
  readonly kind: "client";
  readonly clientId: string;
}

export interface AdminPrincipal {
  readonly kind: "admin";
}

export interface AnonymousPrincipal {
  readonly kind: "anonymous";
}

export type UserPrincipal = SessionPrincipal | UserTokenPrincipal | JwtPrincipal | CookiePrincipal;

export type Principal =
  | UserPrincipal
  | ApiTokenPrincipal
  | BasicPrincipal
  | ClientPrincipal
  | AdminPrincipal
  | AnonymousPrincipal;

/** A principal of one of `kinds`. */
export type PrincipalOf<K extends Principal["kind"]> = Extract<Principal, { kind: K }>;

/** The kinds that name a user (any user credential). */
export const userPrincipalKinds = ["session", "user_token", "jwt", "cookie"] as const satisfies ReadonlyArray<UserPrincipal["kind"]>;
