// A failure written down for an operator (the start's one line, a start's warnings), without a
// secret of the environment.
import { variables } from "./config.js";
import { oneLine, withoutUrlPasswords } from "./core/text.js";
import { StoreUnavailableError } from "./store/ports/errors.js";
import { withoutPassword } from "./store/mongo/mongo-uri.js";

/**
 * Why the start failed, on one line, without a secret of the environment: a store that could not
 * be reached says why (its cause: the port that refused, the authentication the server refused),
 * and any secret value, MONGODB_URI's password or a URL's password a message quotes is <hidden>.
 */
export function failureLine(e: unknown, env: NodeJS.ProcessEnv = process.env): string {
  let text = e instanceof Error ? e.message : String(e);
  if (e instanceof StoreUnavailableError && e.cause instanceof Error && e.cause.message !== "") text += `: ${e.cause.message}`;
  const uri = env[variables.mongodbUri.name];
  if (uri) text = withoutPassword(text, uri);
  for (const v of Object.values(variables)) {
    const value = v.secret ? env[v.name] : undefined;
    if (value) text = text.replaceAll(value, "<hidden>");
  }
  return oneLine(withoutUrlPasswords(text));
}
