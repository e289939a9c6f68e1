// Users, shared by every service.
export interface UserRecord {
  id: string;
  /** Normalised by the core (trim, NFC, lower-case emails); unique. */
  login: string;
  emails: string[];
  firstname?: string;
  lastname?: string;
  passwordHash: string;
  active: boolean;
  createdAt: Date;
  lastLoginAt?: Date;
  /** Set at creation and on every password change; tokens issued before it may be refused. */
  passwordChangedAt: Date;
  deactivatedAt?: Date;
  /** Starts at 0, grows on every change (optimistic-concurrency counter). */
  version: number;
}

export interface NewUser {
  id: string;
  login: string;
  emails: string[];
  firstname?: string;
  lastname?: string;
  passwordHash: string;
  createdAt: Date;
}

export interface UserStore {
  /** active=true, version=0, passwordChangedAt=createdAt. DuplicateError("login") when taken (or "id"). */
  create(user: NewUser): Promise<UserRecord>;
  findById(id: string): Promise<UserRecord | null>;
  /** `login` must already be normalised by the caller. */
  findByLogin(login: string): Promise<UserRecord | null>;
  /** A real password change: sets hash and passwordChangedAt, version++. Null when no such user. */
  updatePasswordHash(id: string, passwordHash: string, at: Date): Promise<UserRecord | null>;
  /**
   * Rehash after a parameter change (same password): replaces the hash only while it is still
   * `expectedHash`, so it never overwrites a concurrent password change. passwordChangedAt is
   * kept; version++. Returns whether it was replaced.
   */
  rehashPassword(id: string, expectedHash: string, newHash: string): Promise<boolean>;
  /** Sets lastLoginAt = at and returns it; null when no such active user. */
  setLastLogin(id: string, at: Date): Promise<Date | null>;
  /** active=false, deactivatedAt=at, version++; false when unknown or already inactive. */
  deactivate(id: string, at: Date): Promise<boolean>;
}
