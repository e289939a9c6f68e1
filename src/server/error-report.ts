// What the log keeps of an unexpected error: its type, its code, a message with the quoted
// parts and token-like runs masked, and where it was thrown (the stack's frames). Messages can
// quote their input — V8's JSON.parse quotes the text it failed on, a driver quotes the value
// of a duplicate key — and that input may be a password or a token: it never reaches the log.

const quoted = /"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`(?:[^`\\]|\\.)*`/g;
const tokenLike = /[A-Za-z0-9+_=-]{32,}/g;

export function scrubMessage(message: string): string {
  const masked = message.replace(quoted, (q) => `${q[0]}…${q[0]}`).replace(tokenLike, "…");
  return masked.length > 500 ? `${masked.slice(0, 500)}…` : masked;
}

/** The stack's frames ("at ..." lines) without the message lines V8 puts above them. */
function frames(e: Error): string | undefined {
  const lines = (e.stack ?? "").split("\n").filter((l) => /^\s+at /.test(l));
  return lines.length > 0 ? lines.map((l) => l.trim()).join("\n") : undefined;
}

/** Log fields for an unexpected error (and its cause, one level down). */
export function describeError(e: unknown): Record<string, unknown> {
  if (!(e instanceof Error)) return { error: typeof e };
  const code = (e as { code?: unknown }).code;
  const cause = e.cause instanceof Error ? `${e.cause.name}: ${scrubMessage(e.cause.message)}` : undefined;
  return {
    error: `${e.name}: ${scrubMessage(e.message)}`,
    ...(typeof code === "string" || typeof code === "number" ? { errorCode: code } : {}),
    stack: frames(e),
    ...(cause !== undefined && { cause }),
  };
}
