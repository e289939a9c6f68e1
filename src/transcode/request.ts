import type { IncomingMessage } from "node:http";
import type { Http2ServerRequest } from "node:http2";
import { create, fromJson, mergeFromJson, type DescField, type DescMessage, type JsonValue, type Message } from "@bufbuild/protobuf";
import { reflect, type ReflectMessage } from "@bufbuild/protobuf/reflect";
import type { Binding } from "./binding.js";
import { applyFieldTarget, fieldByName, isFieldTarget } from "./field-target.js";
import { badRequest, HttpError, quotedName, violatedName } from "./http-error.js";
import { charsetOf, decodeUtf8, formMediaType, isJsonMediaType, mediaType, otherCharset, readBody } from "./body.js";
import { multipartFormMediaType, parseMultipartArguments } from "./form-data.js";
import { decodeSegment, decodeSegmentKeepSlash } from "./percent.js";
import { argumentNoun, parseArguments, type Argument } from "./query.js";
import { variableValue } from "./route-table.js";
import { ParseFailure } from "./scalar.js";
import { findImpossibleTimestamp } from "./timestamp.js";
import { findNonDecimalNumber } from "./json-numbers.js";
import { findUnknownEnumName } from "./json-enums.js";
import { unquotedJsonError } from "./json-error.js";
import { repeatedKey } from "../core/json-keys.js";
import { credentialShaped } from "../credential-shapes.js";
import { quotedRequestText } from "../core/text.js";

const jsonRead = { ignoreUnknownFields: true } as const;

/**
 * Builds the RPC's request message from an HTTP request: first the body (by the binding's
 * body rule), then query (and, for loose bindings, form) arguments, then path variables, so the
 * path wins over everything. A loose binding's argument given twice, in one place or two (a JSON
 * body or form body and the query), is 400: neither is taken over the other. An error quotes
 * the request's text (a header's value, an argument's name) as quotedRequestText does: at most
 * 64 characters, escaped, `*` for one `unquotable` says holds a credential.
 */
export async function buildRequestMessage(
  binding: Binding,
  req: IncomingMessage | Http2ServerRequest,
  segments: readonly string[],
  rawQuery: string,
  maxBodyBytes: number,
  unquotable: (text: string) => boolean = credentialShaped,
): Promise<Message> {
  const desc = binding.rpc.input;
  const msg = create(desc);
  const r = reflect(desc, msg, false);
  const args: Argument[] = [];
  /** Loose arguments: the fields a JSON body gave, which no query argument may give again. */
  let jsonFields: readonly string[] = [];

  const rule = binding.body;
  if (rule.kind !== "none" || binding.loose) {
    const encoding = req.headers["content-encoding"];
    // An empty Content-Encoding lists no coding (RFC 9110 8.4: a list of them, which may be empty).
    if (encoding !== undefined && encoding !== "" && encoding.toLowerCase() !== "identity") {
      // RFC 9110 15.5.16: Accept-Encoding names the codings that would have been taken.
      throw new HttpError(415, "invalid_argument", "UNSUPPORTED_MEDIA_TYPE", `unsupported content encoding ${quotedRequestText(encoding, unquotable)}`, { headers: { "accept-encoding": "identity" } });
    }
    const bytes = await readBody(req, maxBodyBytes);
    const contentType = req.headers["content-type"];
    if (rule.kind === "raw") {
      setRawBody(r, rule.field, contentType ?? "", bytes);
    } else if (bytes.length > 0) {
      const type = mediaType(contentType);
      if (type === "" || isJsonMediaType(type)) {
        const [json, text] = parseJson(bytes, contentType, unquotable);
        mergeJsonBody(binding, r, msg, json, text);
        if (binding.loose && rule.kind !== "field") jsonFields = givenFields(desc, json);
      } else if (binding.loose && type === formMediaType) {
        const text = formText(bytes, contentType, unquotable);
        // JSON sent as a form (`curl -d '{"user":"ann","pass":"hunter2"}'` sends that content
        // type): read as one, its "names" would be pieces of the JSON split at each "&" and "="
        // of its values, a password's among them, for an error to quote. No field's name begins so.
        if (beginsAsJson(text)) throw new HttpError(415, "invalid_argument", "UNSUPPORTED_MEDIA_TYPE", jsonAsForm);
        parseArguments(text, args, true, unquotable);
      } else if (binding.loose && type === multipartFormMediaType) {
        parseMultipartArguments(bytes, contentType!, args, unquotable);
      } else {
        throw new HttpError(415, "invalid_argument", "UNSUPPORTED_MEDIA_TYPE", `unsupported content type ${quotedRequestText(contentType!, unquotable)}`);
      }
    }
  }

  const fromQuery = args.length;
  // A query that is JSON, as a form body may be (jsonAsForm): split at each "&" and "=" of its
  // values, its pieces would be names for an error to quote.
  if (beginsAsJson(rawQuery)) throw badRequest("INVALID_QUERY_PARAMETER", jsonAsQuery);
  parseArguments(rawQuery, args, false, unquotable);
  if (args.length > fromQuery && (req.method === "GET" || req.method === "HEAD")) dropCacheBuster(binding, args, fromQuery);
  if (args.length > 0) {
    applyArguments(binding, r, args, unquotable, jsonFields);
  }

  for (const { variable, target } of binding.pathBindings) {
    let text: string;
    try {
      text = variableValue(binding.template, variable, segments, decodeSegment, decodeSegmentKeepSlash);
    } catch (e) {
      // Named, never quoted: a path variable may hold a credential.
      if (e instanceof HttpError && e.reason === "MALFORMED_PATH") {
        throw badRequest("MALFORMED_PATH", `malformed percent-encoding in path variable "${target.path}"`, target.path);
      }
      throw e;
    }
    const failure = applyFieldTarget(r, target, text);
    if (failure) {
      // The value is not quoted: a path or a query may carry a credential.
      throw badRequest("INVALID_PATH_VARIABLE", `invalid path variable "${target.path}": not a valid ${failure.expected}`, target.path);
    }
  }
  return msg;
}

/**
 * Whether a query or form body begins as JSON does: "{" or "[", escaped or not (`curl
 * --data-urlencode '{...}'` escapes the whole text), after white space (`\s`), escaped or not
 * ("+", "%20", "%09", "%0A", "%0D": a form's spaces among them). A scan rather than a regular
 * expression: a repeated group of alternatives of different lengths backtracks through a stack
 * of its own, which a body of 8 MiB of "+" or spaces (a raised TESSERA_BODY_LIMIT_BYTES) overflowed
 * (RangeError: 500).
 */
function beginsAsJson(text: string): boolean {
  for (let i = 0; i < text.length; ) {
    const c = text.charCodeAt(i);
    if (c === 0x7b || c === 0x5b) return true; // "{", "["
    if (c === 0x2b || c === 0x20 || (c >= 0x09 && c <= 0x0d) || (c > 0x7f && whiteSpace.test(text[i]!))) {
      i++;
      continue;
    }
    if (c !== 0x25) return false; // "%"
    const escaped = text.slice(i + 1, i + 3).toUpperCase();
    if (escaped === "7B" || escaped === "5B") return true;
    if (escaped !== "20" && escaped !== "09" && escaped !== "0A" && escaped !== "0D") return false;
    i += 3;
  }
  return false;
}

/** One character of white space (`\s`: ASCII's and Unicode's). */
const whiteSpace = /^\s$/;

const jsonAsForm = `a form body (${formMediaType}) that begins as JSON does, with "{" or "[": JSON is sent as application/json`;
const jsonAsQuery = 'a query that begins as JSON does, with "{" or "[": its arguments are name=value pairs, and JSON is sent as a body of type application/json';

/** Charsets in which JSON text is never UTF-8 (RFC 4627 named them): UTF-16 and UTF-32. */
const wideCharset = /^(?:utf-?(?:16|32)|ucs-?[24])/i;

/** The body's JSON value, and its text. */
function parseJson(bytes: Uint8Array, contentType: string | undefined, hidden: (text: string) => boolean): [JsonValue, string] {
  let text: string;
  try {
    text = decodeUtf8(bytes, "request body");
  } catch (e) {
    throw otherCharset(contentType, "a JSON body", hidden) ?? e;
  }
  try {
    return [JSON.parse(text) as JsonValue, text];
  } catch {
    // UTF-16 text of ASCII characters is valid UTF-8 (with NULs): not JSON because of its charset.
    throw (wideCharset.test(charsetOf(contentType) ?? "") && otherCharset(contentType, "a JSON body", hidden)) || badRequest("MALFORMED_BODY", "request body is not valid JSON");
  }
}

function formText(bytes: Uint8Array, contentType: string | undefined, hidden: (text: string) => boolean): string {
  try {
    return decodeUtf8(bytes, "form body");
  } catch (e) {
    throw otherCharset(contentType, "a form body", hidden) ?? e;
  }
}

function mergeJsonBody(binding: Binding, r: ReflectMessage, msg: Message, json: JsonValue, text: string): void {
  const desc = binding.rpc.input;
  const rule = binding.body;
  refuseRepeatedFields(binding, json, text);
  const value = rule.kind === "field" ? { [rule.field.jsonName]: json } : json;
  // A Timestamp naming no real time, which protobuf-es would carry over into another (timestamp.ts).
  const impossible = findImpossibleTimestamp(desc, value);
  if (impossible) {
    throw badRequest("INVALID_BODY_FIELD", `invalid request body: field "${impossible.key}": cannot decode message google.protobuf.Timestamp from JSON: ${impossible.reason}`, impossible.field);
  }
  // A number field given a string that is no number's text, which protobuf-es would read with
  // Number() or BigInt() ("0x10" as 16, json-numbers.ts), as the router's JSON decoder refuses it.
  // Or an enum field given a name its enum does not have, which protobuf-es would drop as it
  // drops an unknown key (json-enums.ts).
  const refused = findNonDecimalNumber(desc, value) ?? findUnknownEnumName(desc, value);
  if (refused) {
    throw badRequest("INVALID_BODY_FIELD", `invalid request body: field "${refused.key}": ${refused.reason}`, refused.field);
  }
  try {
    if (rule.kind === "field") {
      // Parse the value as that one field of the request message, then move it over.
      const holder = fromJson(desc, { [rule.field.jsonName]: json }, jsonRead);
      r.set(rule.field, reflect(desc, holder, false).get(rule.field));
    } else {
      if (json === null || typeof json !== "object" || Array.isArray(json)) {
        throw badRequest("MALFORMED_BODY", "request body must be a JSON object");
      }
      mergeFromJson(desc, msg, json, jsonRead);
    }
  } catch (e) {
    if (e instanceof HttpError) throw e;
    const key = rule.kind === "field" ? rule.field.jsonName : offendingKey(desc, json);
    const where = key === undefined ? "" : `field "${key}": `;
    const message = `invalid request body: ${where}${withoutTypeNames(unquotedJsonError(e instanceof Error ? e.message : String(e)))}`;
    throw key === undefined ? badRequest("MALFORMED_BODY", message) : badRequest("INVALID_BODY_FIELD", message, fieldPath(desc, key));
  }
}

/**
 * A field the body gives twice is 400 naming it, as a singular query parameter given twice is:
 * a key twice in one object (JSON.parse would keep the last, core/json-keys.ts), or a field under its
 * JSON and its proto name (protobuf-es says "set multiple times" without naming it). A key
 * repeated in an object inside a field's value is not quoted (it may be a map entry's, data the
 * client sent): the field is named. Keys that name no field (ignored) may repeat.
 */
function refuseRepeatedFields(binding: Binding, json: JsonValue, text: string): void {
  const desc = binding.rpc.input;
  const rule = binding.body;
  const twice = (key: string, field: DescField) => badRequest("INVALID_BODY_FIELD", `invalid request body: field "${key}" is given more than once`, field.name);
  const inside = (key: string, field: DescField) => badRequest("INVALID_BODY_FIELD", `invalid request body: field "${key}": an object in it names a key more than once`, field.name);
  if (rule.kind === "field") {
    if (repeatedKey(text)) throw inside(rule.field.jsonName, rule.field);
    return;
  }
  if (json === null || typeof json !== "object" || Array.isArray(json)) return;
  const fieldOf = (key: string) => desc.fields.find((f) => f.jsonName === key || f.name === key);
  const repeated = repeatedKey(text, (key) => fieldOf(key) !== undefined);
  if (repeated) {
    const key = repeated[0]!;
    throw repeated.length === 1 ? twice(key, fieldOf(key)!) : inside(key, fieldOf(key)!);
  }
  const seen = new Set<DescField>();
  for (const key of Object.keys(json)) {
    const field = fieldOf(key);
    if (field === undefined) continue;
    if (seen.has(field)) throw twice(key, field);
    seen.add(field);
  }
}

/**
 * protobuf-es names the field by its fully qualified proto name ("cannot decode field
 * pkg.v1.Request.email from JSON: ..."); the answer already names the JSON field, so that clause
 * is dropped and the message does not change when a proto package is renamed.
 */
function withoutTypeNames(message: string): string {
  return message.replace(/^cannot decode field [\w.]+ from JSON: /, "");
}

/** The proto name of the request field a JSON key names (JSON or proto name); the key itself when none. */
function fieldPath(desc: Binding["rpc"]["input"], key: string): string {
  return desc.fields.find((f) => f.jsonName === key || f.name === key)?.name ?? key;
}

/** The first top-level key of a JSON object body that does not parse on its own (error path only). */
function offendingKey(desc: Binding["rpc"]["input"], json: JsonValue): string | undefined {
  if (json === null || typeof json !== "object" || Array.isArray(json)) return undefined;
  for (const [k, v] of Object.entries(json)) {
    try {
      fromJson(desc, { [k]: v }, jsonRead);
    } catch {
      return k;
    }
  }
  return undefined;
}

function setRawBody(r: ReflectMessage, field: DescField | undefined, contentType: string, data: Uint8Array): void {
  if (field === undefined) {
    // The request message is google.api.HttpBody itself.
    r.set(fieldByName(r.desc, "content_type")!, contentType);
    r.set(fieldByName(r.desc, "data")!, data);
    return;
  }
  const desc = field.message!;
  const body = reflect(desc, create(desc), false);
  body.set(fieldByName(desc, "content_type")!, contentType);
  body.set(fieldByName(desc, "data")!, data);
  r.set(field, body);
}

/**
 * jQuery's cache-buster: `$.ajax({ cache: false })` appends `_=<milliseconds>` to the URL of a
 * GET (and a HEAD), so that no cache answers it. On GET and HEAD a query parameter named exactly
 * `_` that names no field of the request is ignored; in a body, or on any other method, it is
 * an unknown parameter like any other (400). `args[from..]` are the query's.
 */
function dropCacheBuster(binding: Binding, args: Argument[], from: number): void {
  for (let i = args.length - 1; i >= from; i--) {
    if (args[i]!.key !== cacheBuster) continue;
    const target = binding.argumentTarget(cacheBuster);
    if (isFieldTarget(target) || !target.unknown) return;
    args.splice(i, 1);
  }
}

const cacheBuster = "_";

/** The proto names of the fields a JSON body object gives a value (null gives none), each once. */
function givenFields(desc: DescMessage, json: JsonValue): string[] {
  if (json === null || typeof json !== "object" || Array.isArray(json)) return [];
  const names = new Set<string>();
  for (const [key, value] of Object.entries(json)) {
    const field = value === null ? undefined : fieldByName(desc, key);
    if (field) names.add(field.name);
  }
  return [...names];
}

function applyArguments(
  binding: Binding,
  r: ReflectMessage,
  args: readonly Argument[],
  unquotable: (text: string) => boolean,
  jsonFields: readonly string[] = [],
): void {
  // Keyed by field path, so `page_size` and `pageSize` count as the same parameter; a field the
  // JSON body gave (loose arguments) counts as given once already.
  const seen = args.length > 1 || jsonFields.length > 0 ? new Map<string, { form?: true; json?: true }>(jsonFields.map((f) => [f, { json: true }])) : undefined;
  for (const arg of args) {
    const { key, value } = arg;
    const noun = argumentNoun(arg);
    const target = binding.argumentTarget(key);
    if (!isFieldTarget(target)) {
      const shown = quotedName(key, unquotable);
      throw target.unknown
        ? shown === "*"
          ? badRequest("UNKNOWN_QUERY_PARAMETER", `unknown ${noun} (not quoted: it has the shape of a credential)`)
          : badRequest("UNKNOWN_QUERY_PARAMETER", `unknown ${noun} ${shown}`, violatedName(key, unquotable))
        : badRequest("INVALID_QUERY_PARAMETER", `invalid ${noun} ${shown}: ${target.reason}`, violatedName(key, unquotable));
    }
    if (!target.repeated && seen) {
      const first = seen.get(target.path);
      if (first) {
        const message =
          argumentNoun(first) === noun ? `${noun} "${key}" is given more than once` : `"${key}" is given both as a ${argumentNoun(first)} and as a ${noun}`;
        throw badRequest("INVALID_QUERY_PARAMETER", message, target.path);
      }
      seen.set(target.path, arg);
    }
    const failure: ParseFailure | undefined = applyFieldTarget(r, target, value);
    if (failure) {
      throw badRequest("INVALID_QUERY_PARAMETER", `invalid ${noun} "${key}": not a valid ${failure.expected}`, target.path);
    }
  }
}
