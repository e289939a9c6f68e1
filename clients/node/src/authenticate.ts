// What both server interceptors (Connect and @grpc/grpc-js) do with an incoming call: take the
// bearer token from the Authorization header, verify it, and either hand back the principal or
// say why the call is refused — UNAUTHENTICATED for the caller's credential, UNAVAILABLE when
// the keys cannot be fetched (the caller's token may be fine: retrying helps). What the
// application's own code (allowAnonymous, onRefusal, the verifier) throws never reaches the
// caller: it is a process warning, and the call is answered as it would have been, or INTERNAL.
import type { TokenVerifier } from "./verify/token-verifier.js";
import type { VerifiedToken } from "./verify/claims.js";
import { TokenVerificationError } from "./verify/errors.js";

export interface AuthOptions {
  /**
   * Procedures ("/package.Service/Method") that may be called without a token, e.g. health
   * checks. A token such a call does carry is still verified (and refused when invalid).
   */
  allowAnonymous?: (procedure: string) => boolean;
  /**
   * Called with the reason a token was refused or could not be verified, to log it (the caller's
   * message is shorter); not for a call without a credential or with another scheme. If it
   * throws, the call is refused all the same and the throw is a process warning.
   */
  onRefusal?: (error: TokenVerificationError, procedure: string) => void;
}

/** Why a call is refused: the status and a message for the caller. */
export class AuthRefusal {
  constructor(
    readonly status: "unauthenticated" | "unavailable" | "internal",
    readonly message: string,
    /** The WWW-Authenticate challenge (RFC 6750) for the answer. */
    readonly challenge: string | undefined,
  ) {}
}

const bearerPattern = /^Bearer +([^\s]+)\s*$/i;

/** The `code` of the process warning that reports what allowAnonymous, onRefusal or the verifier threw. */
export const authCallbackWarningCode = "TESSERA_AUTH_CALLBACK_THREW";

/** The answer to a call whose allowAnonymous or verifier threw: nothing of what was thrown. */
const internalError = new AuthRefusal("internal", "internal error", undefined);

/**
 * Reports what the application's `callback` threw on a call of `procedure` as a process warning
 * (`process.on("warning")`; Node writes it to stderr unless told not to), the thrown value its
 * `cause`: the application sees it, the caller never does, and the process goes on.
 */
function reportThrow(callback: "allowAnonymous" | "onRefusal" | "verify", procedure: string, thrown: unknown): void {
  let said: string;
  try {
    said = thrown instanceof Error ? thrown.message : String(thrown);
  } catch {
    said = "a value that cannot be written as a string";
  }
  const warning = new Error(`${callback} threw on ${procedure}: ${said}`, { cause: thrown });
  warning.name = "TesseraAuthWarning";
  process.emitWarning(Object.assign(warning, { code: authCallbackWarningCode }));
}

/** Whether allowAnonymous lets `procedure` be called without a token; throws AuthRefusal (internal) if it threw. */
function anonymousAllowed(options: AuthOptions, procedure: string): boolean {
  try {
    return options.allowAnonymous?.(procedure) === true;
  } catch (e) {
    reportThrow("allowAnonymous", procedure, e);
    throw internalError;
  }
}

/**
 * The principal of a call whose Authorization header values are `authorization`; undefined
 * for an anonymous call to an allowed procedure. Throws AuthRefusal, and nothing else.
 */
export async function authenticate(
  verifier: Pick<TokenVerifier, "verify">,
  authorization: readonly string[],
  procedure: string,
  options: AuthOptions,
): Promise<VerifiedToken | undefined> {
  if (authorization.length === 0) {
    if (anonymousAllowed(options, procedure)) return undefined;
    throw new AuthRefusal("unauthenticated", 'missing credential: send "Authorization: Bearer <Tessera access token>"', "Bearer");
  }
  const match = authorization.length === 1 ? bearerPattern.exec(authorization[0]!) : null;
  if (!match) throw new AuthRefusal("unauthenticated", 'the Authorization header must be one "Bearer <Tessera access token>"', 'Bearer error="invalid_request"');
  try {
    return await verifier.verify(match[1]!);
  } catch (e) {
    if (!(e instanceof TokenVerificationError)) {
      reportThrow("verify", procedure, e);
      throw internalError;
    }
    try {
      options.onRefusal?.(e, procedure);
    } catch (thrown) {
      reportThrow("onRefusal", procedure, thrown);
    }
    if (e.code === "KEYS_UNAVAILABLE") throw new AuthRefusal("unavailable", "Tessera's signing keys are unavailable: the token cannot be verified now; retry later", undefined);
    throw new AuthRefusal("unauthenticated", `invalid Tessera access token: ${e.message} (${e.code})`, 'Bearer error="invalid_token"');
  }
}
