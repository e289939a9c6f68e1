import { quotedMax, quotedRequestText } from "../core/text.js";

/**
 * Why the transcoder refused a request itself, before or instead of calling the RPC. Stable,
 * UPPER_SNAKE: with `errorDomain` set, each travels as the `reason` of a google.rpc.ErrorInfo in
 * the error's `details`, so clients can branch on it without parsing messages.
 */
export const TranscodeReasons = {
  /** No route for this path. */
  ROUTE_NOT_FOUND: "ROUTE_NOT_FOUND",
  /** The path has routes, but not for this HTTP method (`Allow` lists them). */
  METHOD_NOT_ALLOWED: "METHOD_NOT_ALLOWED",
  /** A path segment has a malformed percent-escape, or is not UTF-8. */
  MALFORMED_PATH: "MALFORMED_PATH",
  /** A path variable's value is not valid for its field (the field violation names it). */
  INVALID_PATH_VARIABLE: "INVALID_PATH_VARIABLE",
  /** More query parameters and form fields than the transcoder accepts. */
  TOO_MANY_QUERY_PARAMETERS: "TOO_MANY_QUERY_PARAMETERS",
  /** A query parameter (or form field) names no field of the request (the field violation names it). */
  UNKNOWN_QUERY_PARAMETER: "UNKNOWN_QUERY_PARAMETER",
  /**
   * A query parameter (or form field) cannot be taken: its value is not valid for the field, it
   * is malformed, given twice, or names a field that takes no text (the field violation names it).
   */
  INVALID_QUERY_PARAMETER: "INVALID_QUERY_PARAMETER",
  /** The body is not UTF-8, not JSON, or not the JSON object the binding needs, or it was cut short. */
  MALFORMED_BODY: "MALFORMED_BODY",
  /** A field of the JSON body has a value of the wrong type (the field violation names it). */
  INVALID_BODY_FIELD: "INVALID_BODY_FIELD",
  /** The body is larger than the limit (413). */
  REQUEST_TOO_LARGE: "REQUEST_TOO_LARGE",
  /** The body's Content-Type or Content-Encoding is not accepted (415). */
  UNSUPPORTED_MEDIA_TYPE: "UNSUPPORTED_MEDIA_TYPE",
  /** A CORS preflight from an origin that is not allowed (403). */
  ORIGIN_NOT_ALLOWED: "ORIGIN_NOT_ALLOWED",
  /** An unexpected failure (500); nothing more is told. */
  INTERNAL: "INTERNAL",
} as const;

export type TranscodeReason = (typeof TranscodeReasons)[keyof typeof TranscodeReasons];

/**
 * An error the transcoder answers itself, before or instead of calling the RPC: no route,
 * wrong method, bad path or query, body too large, unsupported content type.
 * `code` is the Connect code name written in the JSON error body; `field`, the request field
 * (or the parameter as given, when it names none) the error is about.
 */
export class HttpError extends Error {
  override readonly name = "HttpError";
  constructor(
    readonly status: number,
    readonly code: string,
    readonly reason: TranscodeReason,
    message: string,
    readonly options: { headers?: Record<string, string>; field?: string } = {},
  ) {
    super(message);
  }
}

export function badRequest(reason: TranscodeReason, message: string, field?: string): HttpError {
  return new HttpError(400, "invalid_argument", reason, message, field === undefined ? {} : { field });
}

/**
 * Characters no field's path holds, and a value sent as a name does: a name=value pair encoded
 * as one name (`pass%3Dhunter2`, a client that percent-encoded the whole pair, or
 * `pass:hunter2`), or a JSON text sent as a form (`curl -d '{"user":"ann","pass":"hunter2"}'`
 * sends that content type), whose "names" are pieces of the JSON, split at each "&" of its
 * values, the password among them. Percent-escaped too, for a name that did not decode.
 */
const valueInName = /[=:"'{}]|%(?:3[ad]|2[27]|7[bd])/i;

/**
 * `name`, a query parameter's or form field's name, as an error quotes it: as quotedRequestText
 * does (`hidden`: see unquotable), or, when it holds a character of a value sent as a name
 * (valueInName), not at all, saying why.
 */
export function quotedName(name: string, hidden: (text: string) => boolean): string {
  return valueInName.test(name) ? `(not quoted: it holds "=", ":", a quote or a brace, as a value sent as a name does)` : quotedRequestText(name, hidden);
}

/**
 * `name`, a request's text (a query parameter's or form field's name), as an error's field
 * violation names it: as sent when the error's message quotes it whole and unchanged
 * (quotedName: at most 64 characters, nothing escaped or hidden), else undefined, so the
 * details never hold more of the request than the message does.
 */
export function violatedName(name: string, hidden: (text: string) => boolean): string | undefined {
  return name.length <= quotedMax && quotedName(name, hidden) === JSON.stringify(name) ? name : undefined;
}
