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
}

export interface JwtPrincipal {
  readonly kind: "jwt";
  readonly userId: string;
  /** The verified claims of the access token. */
  readonly claims: Readonly<Record<string, unknown>>;
  readonly authenticationMethod: "password" | "refresh_token";
}

/** The seed 003 session cookie: accepted on safe methods only. */
export interface CookiePrincipal {
  readonly kind: "cookie";
  readonly userId: string;
  readonly sessionId: string;
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
