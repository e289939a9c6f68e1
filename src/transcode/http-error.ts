/**
 * An error the transcoder answers itself, before or instead of calling the RPC: no route,
 * wrong method, bad path or query, body too large, unsupported content type.
 * `code` is the Connect code name written in the JSON error body.
 */
export class HttpError extends Error {
  override readonly name = "HttpError";
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly headers?: Record<string, string>,
  ) {
    super(message);
  }
}

export function badRequest(message: string): HttpError {
  return new HttpError(400, "invalid_argument", message);
}
