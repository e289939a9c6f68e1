// What the log keeps of an unexpected error: its type, its code, a message with the quoted
// parts and token-like runs masked, and where it was thrown (the stack's frames). Messages can
// quote their input — V8's JSON.parse quotes the text it failed on, a driver quotes the value
// of a duplicate key — and that input may be a password or a token: it never reaches the log.

const tokenLike = /[A-Za-z0-9+_=-]{32,}/g;
const lineBreak = /[\n\r\u2028\u2029]/;

/**
 * `message` with each quoted part ("...", '...' or `...`: closed by its own quote, a backslash
 * escaping the next character but a line break) written as its quotes around "…". Linear in the
 * message: a quote left open ends its reading where it failed (a line break after a backslash,
 * or the end), and a quote of its kind before that point cannot do better (it stands after a
 * backslash of the open one, so its reading joins the open one's), so it is not read again. An
 * expression that read the rest of the message from each such quote took time quadratic in a
 * run of escaped quotes (64 Ki characters: 2.8 s).
 */
function maskQuoted(message: string): string {
  const n = message.length;
  const failsBefore: Record<string, number> = { '"': 0, "'": 0, "`": 0 };
  let out = "";
  let copied = 0;
  for (let i = 0; i < n; i++) {
    const q = message[i]!;
    if ((q !== '"' && q !== "'" && q !== "`") || i < failsBefore[q]!) continue;
    let j = i + 1;
    while (j < n && message[j] !== q && !(message[j] === "\\" && (j + 1 >= n || lineBreak.test(message[j + 1]!)))) j += message[j] === "\\" ? 2 : 1;
    if (j >= n || message[j] !== q) {
      failsBefore[q] = j;
      continue;
    }
    out += `${message.slice(copied, i)}${q}…${q}`;
    copied = j + 1;
    i = j;
  }
  return copied === 0 ? message : out + message.slice(copied);
}

export function scrubMessage(message: string): string {
  const masked = maskQuoted(message).replace(tokenLike, "…");
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
