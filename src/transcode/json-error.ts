// protobuf-es's errors for a JSON request message it cannot read quote the value they refuse
// ("expected string, got 12345678901", `cannot decode enum pkg.E from JSON: "hunter2"`, "map
// entry "k": ..."): a numeric password, a PIN or a token sent in the wrong place would come back
// in the error, which clients, proxies and their logs keep. unquotedJsonError keeps what names
// the problem (the field, the type expected, the JSON type given) and drops every value. It reads
// protobuf-es's message by its grammar: a known clause is kept, a quoted value becomes its JSON
// type, and any text it does not know is replaced by "invalid value" rather than passed on.

/** The clauses protobuf-es puts before a reason; each names a type or a field, never a value. */
const headClause = /^cannot decode (?:message|field|enum) [\w.]+ from JSON:? /;
const listItemClause = /^list item #\d+: /;

/** Reasons that hold no value of the request (protobuf-es 2's words), kept as they are. */
const fixedReasons = [
  /^unexpected NaN number$/,
  /^unexpected infinite number$/,
  /^set multiple times$/,
  /^oneof set multiple times by \w+ and \w+$/,
  /^list item must not be null$/,
  /^map value must not be null$/,
  /^invalid RFC 3339 string$/,
  // timestamp.ts's own reasons for a date that does not exist: digits of a date, not a value.
  /^invalid RFC 3339 string: \d{4}-\d{2}-\d{2} is no date \(\w+ \d{4} has \d{2} days\)$/,
  /^invalid RFC 3339 string: 24:00:00 is no time of day \(00:00:00 to 23:59:59\)$/,
  // Its reasons for an RFC 3339 date-time a Timestamp does not take: fixed words, no value.
  /^invalid RFC 3339 string: a leap second \(:60\) is not supported: google\.protobuf\.Timestamp has none$/,
  /^invalid RFC 3339 string: at most 9 fraction digits \(nanoseconds\) are supported$/,
  /^invalid RFC 3339 string: "T" and "Z" are taken in upper case only$/,
  /^must be from 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z inclusive$/,
  /^path names must be lowerCamelCase$/,
  /^maximum recursion depth of \d+ reached$/,
  /^invalid base64 string$/,
  /^"@type" is (?:empty|invalid)$/,
  /^not valid JSON$/,
  // A key names a field the client wrote, not a value: kept when it is a plain name.
  /^key "[\w.-]{1,64}" is unknown$/,
  /^duplicate object key "[\w.-]{1,64}"$/,
  /^expected [\w.() ]+: invalid UTF8$/,
  // What unquotedJsonError writes itself (a message can be corrected twice).
  /^expected [\w.() ]+, got (?:number|boolean|string|array|object|null|value|a value out of its range)$/,
  /^(?:unknown value name|invalid value|invalid map entry|invalid duration string)$/,
  /^(?:invalid value|expected object|expected a value name or an integer|expected an RFC 3339 string|expected a duration string), got (?:number|boolean|string|array|object|null)$/,
];

/** "expected <type>, got <value>": the type is a type's name, the rest is the value as formatVal wrote it. */
const expectedGot = /^expected ([\w.() ]+?),? (?:but )?got ([\s\S]*)$/;
/** "expected <type>: <value> out of range" (a 64-bit value is quoted whatever its text). */
const outOfRange = /^expected ([\w.() ]+): [\s\S]* out of range$/;

/**
 * The JSON type of a value as protobuf-es's formatVal writes it: a string of at most 30
 * characters in double quotes, a longer one as "string", a number, true or false, null,
 * "Array(n)" or "object".
 */
function jsonType(formatted: string): string {
  if (formatted === "null") return "null";
  if (formatted === "true" || formatted === "false") return "boolean";
  if (formatted === "string" || formatted.startsWith('"')) return "string";
  if (/^Array\(\d+\)$/.test(formatted)) return "array";
  if (formatted === "object") return "object";
  if (/^-?(?:\d|Infinity|NaN)/.test(formatted)) return "number";
  return "value";
}

/** The reason with no value left in it. `head` is the last clause before it (what it is about). */
function unquotedReason(reason: string, head: string): string {
  if (fixedReasons.some((r) => r.test(reason))) return reason;
  let m = expectedGot.exec(reason);
  if (m) return `expected ${m[1]}, got ${jsonType(m[2]!)}`;
  m = outOfRange.exec(reason);
  if (m) return `expected ${m[1]}, got a value out of its range`;
  // The reason is the value alone: "cannot decode enum E from JSON: "x"", or a message (a
  // well-known type's string form, or a body that is no object) given a value it cannot take.
  // V8's JSON.parse messages (protobuf-es passes them on) quote the text around the error; a
  // string value alone (formatVal's, in double quotes) may hold the word too, and is valid JSON.
  if (!/^"[\s\S]*"$/.test(reason) && /\bJSON\b/.test(reason)) return "not valid JSON";
  const type = jsonType(reason);
  if (type === "value") return "invalid value";
  if (head.startsWith("cannot decode enum ")) return type === "string" ? "unknown value name" : `expected a value name or an integer, got ${type}`;
  if (head === "cannot decode message google.protobuf.Timestamp from JSON: ") return `expected an RFC 3339 string, got ${type}`;
  if (head === "cannot decode message google.protobuf.Duration from JSON: ") return type === "string" ? "invalid duration string" : `expected a duration string, got ${type}`;
  if (head === "cannot decode message google.protobuf.FieldMask from JSON: ") return `expected a string of field paths, got ${type}`;
  // protobuf-es writes Struct and ListValue errors without the colon.
  if (head === "cannot decode message google.protobuf.Struct from JSON ") return `expected object, got ${type}`;
  if (head === "cannot decode message google.protobuf.ListValue from JSON ") return `expected array, got ${type}`;
  if (head.startsWith("cannot decode message ") && !head.startsWith("cannot decode message google.protobuf.")) return `expected object, got ${type}`;
  return `invalid value, got ${type}`;
}

/**
 * protobuf-es's message for a JSON value it cannot read, without the value: the same clauses,
 * each value replaced by its JSON type ("expected string, got number"). A message that is not
 * protobuf-es's is returned as it is.
 */
export function unquotedJsonError(message: string): string {
  if (!headClause.test(message)) return message;
  let rest = message;
  let out = "";
  let head = "";
  for (;;) {
    const m = headClause.exec(rest) ?? listItemClause.exec(rest);
    if (!m) break;
    if (!m[0].startsWith("list")) head = m[0];
    out += m[0];
    rest = rest.slice(m[0].length);
  }
  // A map entry's key is data the client sent: the entry is not named.
  if (rest.startsWith("map entry ") || rest.startsWith("invalid map key") || rest.startsWith("duplicate map key")) return `${out}invalid map entry`;
  // protobuf-es writes Struct and Value errors without the colon: "... from JSON <value>".
  return out + unquotedReason(rest, head);
}
