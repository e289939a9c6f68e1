// multipart/form-data bodies (RFC 7578) for loose (seed 004) bindings: the other form encoding,
// the one `curl -F` and an HTML form with enctype="multipart/form-data" send, which Flask reads
// into `request.values` as it reads a URL-encoded body. Text fields only: a file part is refused.
import { charsetOf, decodeUtf8 } from "./body.js";
import { badRequest, HttpError, quotedName, violatedName } from "./http-error.js";
import { maxArguments, tooManyArguments, type Argument } from "./query.js";
import { quotedRequestText } from "../core/text.js";
import { credentialShaped } from "../credential-shapes.js";

export const multipartFormMediaType = "multipart/form-data";

const malformed = () => badRequest("MALFORMED_BODY", "form body is not valid multipart/form-data");

/**
 * The boundary parameter of a multipart Content-Type (RFC 2046 5.1.1: 1 to 70 characters); a
 * 400 naming the problem when there is none, more than one (a reader in front may split the
 * body by the other) or one of another length. The parameters are read as parameterList reads
 * them: a `boundary=` inside another parameter's quoted value is none (a reader in front finds no
 * boundary there, and may pass on a body it cannot read).
 */
function boundaryOf(contentType: string): string {
  const semicolon = contentType.indexOf(";");
  const parameters = semicolon < 0 ? [] : parameterList(contentType.slice(semicolon));
  const boundaries = (parameters ?? []).filter(([name]) => name === "boundary");
  if (boundaries.length > 1) throw badRequest("MALFORMED_BODY", `multipart/form-data with ${boundaries.length} boundary parameters: it must have one`);
  if (boundaries.length === 0) throw badRequest("MALFORMED_BODY", "multipart/form-data without a boundary parameter");
  const boundary = boundaries[0]![1];
  if (boundary.length < 1 || boundary.length > 70) throw badRequest("MALFORMED_BODY", "the multipart/form-data boundary parameter must be 1 to 70 characters (RFC 2046 5.1.1)");
  return boundary;
}

/** A parameter's name (RFC 9110 5.6.2's token). */
const parameterName = /[!#$%&'*+.^_`|~0-9A-Za-z-]+/y;
/** A value that is not quoted: up to white space, ";" or a quote (perhaps empty). */
const bareValue = /[^\s;"]*/y;

/**
 * The parameters of a Content-Type or Content-Disposition value after its type (`; name="user";
 * filename=a`), read left to right (RFC 9110 5.6.6 and 8.3.1, RFC 6266 4.1: `*( OWS ";" OWS [
 * parameter ] )`, each a name, "=" and a token or a quoted-string; white space around the "="
 * taken too): names lower case, each quoted value read whole and its quoted-pairs (RFC 9110
 * 5.6.4) undone, so that a ";" or a `name=` inside one is that value's. A quoted-pair is `\\` or
 * `\"`: the others are read otherwise by Flask and by browsers, and refused. Undefined when the text
 * is no such list (a value left open, a parameter without "="). Linear in the text's length.
 */
function parameterList(params: string): Array<[name: string, value: string]> | undefined {
  const out: Array<[string, string]> = [];
  let i = 0;
  const blank = () => {
    while (params[i] === " " || params[i] === "\t") i++;
  };
  for (;;) {
    blank();
    if (i === params.length) return out;
    if (params[i] !== ";") return undefined;
    i++;
    blank();
    // An empty parameter (`;;`, a trailing ";").
    if (i === params.length || params[i] === ";") continue;
    parameterName.lastIndex = i;
    const name = parameterName.exec(params)?.[0];
    if (name === undefined) return undefined;
    i += name.length;
    blank();
    if (params[i] !== "=") return undefined;
    i++;
    blank();
    let value = "";
    if (params[i] === '"') {
      let from = ++i;
      for (; i < params.length && params[i] !== '"'; i++) {
        if (params[i] === "\\" && i + 1 < params.length) {
          // Only \\ and \": RFC 9110 reads "\a" as "a", Flask as "\a", and a browser, which
          // escapes no backslash (the HTML Standard), means "\a" too: refused, it names no field.
          if (params[i + 1] !== "\\" && params[i + 1] !== '"') return undefined;
          value += params.slice(from, i);
          from = ++i;
        }
      }
      if (i === params.length) return undefined;
      value += params.slice(from, i++);
    } else {
      bareValue.lastIndex = i;
      value = bareValue.exec(params)![0];
      i += value.length;
    }
    out.push([name.toLowerCase(), value]);
  }
}

/** A parameter's name without RFC 2231's marks (`filename*`, `filename*0`, `filename*1*`: `filename`). */
function rfc2231Base(parameter: string): string {
  return parameter.replace(/\*(?:\d+\*?)?$/, "");
}

/**
 * The field name of a part from its header block; a part without `form-data; name` is malformed.
 * Its errors quote the name as quotedName does, and the header values they refuse as
 * quotedRequestText does
 * (`hidden`: see unquotable).
 */
function fieldName(headers: string, hidden: (text: string) => boolean): string {
  const lines = headers.split("\r\n");
  const dispositions = lines.filter((line) => /^content-disposition[ \t]*:/i.test(line)).length;
  if (dispositions > 1) {
    // A reader in front that takes the other one would see another field.
    throw badRequest("MALFORMED_BODY", `a part of the multipart/form-data body has ${dispositions} Content-Disposition headers: it must have one`);
  }
  for (const line of lines) {
    const m = /^content-disposition[ \t]*:[ \t]*form-data[ \t]*(;.*)?$/i.exec(line);
    if (!m) continue;
    const list = parameterList(m[1] ?? "");
    if (list === undefined) throw malformed();
    const params = new Map(list);
    // RFC 6266 4.1: a parameter named twice makes the value invalid; a reader in front that
    // takes the other one (Flask takes the last) would see another field. So is `name` given in
    // RFC 2231's forms too (`name*`, `name*0`), which Flask reads as the name, joined.
    const names = list.filter(([parameter]) => rfc2231Base(parameter) === "name").length;
    if (params.size < list.length || names > 1) {
      throw badRequest("MALFORMED_BODY", "a part of the multipart/form-data body names a Content-Disposition parameter more than once: each must be named once (RFC 6266 4.1)");
    }
    const name = params.get("name");
    if (name === undefined || name === "") throw malformed();
    if (list.some(([parameter]) => rfc2231Base(parameter) === "filename")) {
      throw badRequest("MALFORMED_BODY", `form field ${quotedName(name, hidden)} is a file: only text fields are accepted`, violatedName(name, hidden));
    }
    notEncoded(headers, name, hidden);
    return name;
  }
  throw malformed();
}

const transferEncodingName = /^content-transfer-encoding[ \t]*:/i;
/** What ends a line for a regular expression's "." and "$": a value holding one is no header's. */
const lineTerminator = /[\n\r\u2028\u2029]/;

/**
 * The value of a part's header line that is its Content-Transfer-Encoding, without the white
 * space around it; undefined for any other line, and for one holding a line terminator (a lone
 * LF or CR, which splitting at CRLF leaves in a line). Linear in the line: the regular expression
 * it replaces (`[ \t]*(.*?)[ \t]*$` after the colon) tried every way of sharing a run of white
 * space between its three parts, time cubic in the run's length (3000 spaces before a lone LF:
 * seconds; the 64 KiB a body may hold: days).
 */
function transferEncoding(line: string): string | undefined {
  const name = transferEncodingName.exec(line);
  if (name === null) return undefined;
  const rest = line.slice(name[0].length);
  if (lineTerminator.test(rest)) return undefined;
  let start = 0;
  let end = rest.length;
  while (start < end && (rest[start] === " " || rest[start] === "\t")) start++;
  while (end > start && (rest[end - 1] === " " || rest[end - 1] === "\t")) end--;
  return rest.slice(start, end);
}

/**
 * A field is read as sent, as UTF-8: one whose part says otherwise (a Content-Transfer-Encoding
 * such as base64, deprecated by RFC 7578 4.7, or a charset other than UTF-8 in its Content-Type)
 * is 415 naming it, rather than read as its encoded text.
 */
function notEncoded(headers: string, name: string, hidden: (text: string) => boolean): void {
  const field = violatedName(name, hidden);
  const refused = (what: string) =>
    new HttpError(415, "invalid_argument", "UNSUPPORTED_MEDIA_TYPE", `form field ${quotedName(name, hidden)} is in the ${what}`, field === undefined ? {} : { field });
  for (const line of headers.split("\r\n")) {
    const transfer = transferEncoding(line);
    if (transfer !== undefined && !/^(?:7bit|8bit|binary)$/i.test(transfer)) {
      throw refused(`Content-Transfer-Encoding ${quotedRequestText(transfer, hidden)}: a field is read as sent (RFC 7578 4.7)`);
    }
    const type = /^content-type[ \t]*:(.*)$/i.exec(line);
    const charset = type && charsetOf(type[1]);
    if (charset && !/^(?:utf-?8|us-ascii)$/i.test(charset)) throw refused(`charset ${quotedRequestText(charset, hidden)}: a field is read as UTF-8`);
  }
}

/**
 * Splits a multipart/form-data body into its fields, in order, after `into` (the same list as
 * the query's arguments, under the same limit). A missing boundary, broken framing, a part
 * without a field name, a file part or text that is not UTF-8 is a 400 naming the problem; what
 * an error quotes of the request is quoted as quotedRequestText says (`hidden`: see unquotable).
 */
export function parseMultipartArguments(bytes: Buffer, contentType: string, into: Argument[] = [], hidden: (text: string) => boolean = credentialShaped): Argument[] {
  const boundary = boundaryOf(contentType);
  const delimiter = Buffer.from(`\r\n--${boundary}`);
  // The first delimiter opens the body, or ends a preamble (which is ignored).
  let at: number;
  if (bytes.subarray(0, delimiter.length - 2).equals(delimiter.subarray(2))) {
    at = delimiter.length - 2;
  } else {
    const first = bytes.indexOf(delimiter);
    if (first < 0) throw malformed();
    at = first + delimiter.length;
  }
  for (;;) {
    // After a delimiter: "--" closes the body (an epilogue is ignored); else padding, CRLF, a part.
    if (bytes[at] === 0x2d && bytes[at + 1] === 0x2d) return into;
    while (bytes[at] === 0x20 || bytes[at] === 0x09) at++;
    if (bytes[at] !== 0x0d || bytes[at + 1] !== 0x0a) throw malformed();
    const headersEnd = bytes.indexOf("\r\n\r\n", at);
    if (headersEnd < 0) throw malformed();
    const end = bytes.indexOf(delimiter, headersEnd + 4);
    if (end < 0) throw malformed();
    const key = fieldName(decodeUtf8(bytes.subarray(at + 2, headersEnd), "form body"), hidden);
    if (into.length >= maxArguments) throw tooManyArguments();
    into.push({ key, value: decodeUtf8(bytes.subarray(headersEnd + 4, end), "form body"), form: true });
    at = end + delimiter.length;
  }
}
