// google.protobuf.Timestamp in its JSON form (RFC 3339) names a real time, or is refused.
// protobuf-es checks the shape of the text, then hands it to Date.parse, which takes any day
// from 01 to 31 in any month and the hour 24 (at 24:00:00), and carries them over: 2030-02-30
// became 2030-03-02, 2030-04-31 May 1, 2030-01-01T24:00:00Z the next midnight. A client that
// wrote an impossible time got a different one, silently. Every place that reads a client's
// Timestamp from JSON checks the text with impossibleTimestamp first: the REST transcoder (body,
// query and form arguments, path variables) and the router's JSON text decoder (Connect, gRPC
// and gRPC-Web in JSON, server/json-text.ts), each through findImpossibleTimestamp when it
// holds a whole message (the text decoder through findUnreadableTimestamp, which also names the
// field of a time protobuf-es refuses itself). A binary Timestamp's range is checked by
// findTimestampOutOfRange (server/timestamp-interceptor.ts).
import { fromJson, type DescMessage, type JsonValue, type Message } from "@bufbuild/protobuf";
import { unquotedJsonError } from "./json-error.js";
import { TimestampSchema } from "@bufbuild/protobuf/wkt";
import { reflect, type ReflectMessage } from "@bufbuild/protobuf/reflect";
import { findRefusedValue, holder, type JsonValueCheck, type RefusedJsonValue } from "./json-fields.js";

const timestampType = "google.protobuf.Timestamp";

/** The JSON form protobuf-es accepts (its own expression): date, time, fraction, offset. */
const rfc3339 = /^([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]{1,9}))?(?:Z|([+-][0-9][0-9]:[0-9][0-9]))$/;

const monthNames = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"];

function daysIn(year: number, month: number): number {
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  return [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1]!;
}

/**
 * Why `text`, which protobuf-es would read as a Timestamp, names no real time (a day its month
 * does not have, 24:00:00) or one it cannot hold (a leap second), or is an RFC 3339 date-time
 * protobuf-es does not read (unreadRfc3339); undefined when it names one, or when protobuf-es
 * refuses the text itself (another shape, a month 13, a day 32, a minute 60: Date.parse refuses
 * those).
 */
export function impossibleTimestamp(text: string): string | undefined {
  const m = rfc3339.exec(text);
  if (!m) return unreadRfc3339(text);
  const [, y, mo, d, h, mi, s] = m as unknown as [string, string, string, string, string, string, string];
  const year = Number(y);
  const month = Number(mo);
  const day = Number(d);
  // What Date.parse refuses (so protobuf-es does) is left to it: its answer stays as it was.
  if (month < 1 || month > 12 || day < 1 || day > 31) return undefined;
  const last = daysIn(year, month);
  if (day > last) return `invalid RFC 3339 string: ${y}-${mo}-${d} is no date (${monthNames[month - 1]} ${y} has ${last} days)`;
  if (h === "24" && mi === "00" && s === "00") return "invalid RFC 3339 string: 24:00:00 is no time of day (00:00:00 to 23:59:59)";
  if (s === "60" && Number(h) <= 23 && Number(mi) <= 59) return "invalid RFC 3339 string: a leap second (:60) is not supported: google.protobuf.Timestamp has none";
  return undefined;
}

/**
 * RFC 3339's date-time (5.6) in the forms it allows and protobuf-es does not read: "t" and "z"
 * in lower case, any number of fraction digits. protobuf-es would call them no RFC 3339 string.
 */
const rfc3339Unread = /^[0-9]{4}-[0-9]{2}-[0-9]{2}([Tt])[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.([0-9]+))?([Zz]|[+-][0-9]{2}:[0-9]{2})$/;

/** Why `text`, an RFC 3339 date-time protobuf-es refuses, is not read; undefined for other text. */
function unreadRfc3339(text: string): string | undefined {
  const m = rfc3339Unread.exec(text);
  if (!m) return undefined;
  if (m[1] === "t" || m[3] === "z") return 'invalid RFC 3339 string: "T" and "Z" are taken in upper case only';
  if (m[2] !== undefined && m[2].length > 9) return "invalid RFC 3339 string: at most 9 fraction digits (nanoseconds) are supported";
  return undefined;
}

/** Whether a message type holds a Timestamp field at any depth (computed once per type). */
export const hasTimestamp = holder((t) => typeof t === "object" && t.typeName === timestampType);

/** A Timestamp in a JSON message that names no real time: where it is, and why. */
export type ImpossibleTimestamp = RefusedJsonValue;

/**
 * The first Timestamp field of `json`, read as a `desc` message, whose text names no real time
 * (impossibleTimestamp); undefined when there is none, or when `desc` holds no Timestamp at all
 * (then nothing is walked). Keys that name no field, and values of the wrong JSON type, are left
 * to protobuf-es.
 */
export function findImpossibleTimestamp(desc: DescMessage, json: JsonValue): ImpossibleTimestamp | undefined {
  return findRefusedValue(desc, json, impossibleCheck);
}

/**
 * As findImpossibleTimestamp, but also a Timestamp value protobuf-es refuses itself (a text that
 * is no RFC 3339 time, a time out of range, a number), with protobuf-es's reason: its own error
 * names the Timestamp type, not the field. What the router's JSON text decoder checks
 * (server/json-text.ts).
 */
export function findUnreadableTimestamp(desc: DescMessage, json: JsonValue): ImpossibleTimestamp | undefined {
  return findRefusedValue(desc, json, unreadableCheck);
}

/** Why a Timestamp's JSON value is refused, or undefined. */
type TimestampCheck = (value: JsonValue) => string | undefined;

/** The walk's check of the Timestamps of a message (json-fields.ts). */
function timestampCheck(check: TimestampCheck): JsonValueCheck {
  return { holds: hasTimestamp, refuse: (t, value) => (typeof t === "object" && t.typeName === timestampType ? check(value) : undefined) };
}

const impossibleValue: TimestampCheck = (value) => (typeof value === "string" ? impossibleTimestamp(value) : undefined);

/** protobuf-es's words for a Timestamp it cannot decode: this, then the reason. */
const refusedPrefix = `cannot decode message ${timestampType} from JSON: `;

const unreadableValue: TimestampCheck = (value) => {
  if (value === null) return undefined; // the field is unset
  // First Tessera's own reasons: protobuf-es calls a leap second, or an RFC 3339 form it does
  // not read, no RFC 3339 string, and REST (findImpossibleTimestamp) says why.
  const own = impossibleValue(value);
  if (own !== undefined) return own;
  try {
    fromJson(TimestampSchema, value);
  } catch (e) {
    // Without the value protobuf-es quotes (a number given for a Timestamp: json-error.ts).
    const message = unquotedJsonError(e instanceof Error ? e.message : String(e));
    return message.startsWith(refusedPrefix) ? message.slice(refusedPrefix.length) : message;
  }
  return undefined;
};

const impossibleCheck = timestampCheck(impossibleValue);
const unreadableCheck = timestampCheck(unreadableValue);

/**
 * A Timestamp a binary (protobuf) message carries is two numbers, which protobuf-es takes as they
 * come: nanos below 0 or over 999,999,999, seconds before 0001-01-01 or after 9999-12-31 (what
 * google.protobuf.Timestamp declares its range, and protobuf-es's JSON reader refuses). Why this
 * one is out of range, or undefined.
 */
export function timestampOutOfRange(seconds: bigint, nanos: number): string | undefined {
  if (!Number.isInteger(nanos) || nanos < 0 || nanos > 999_999_999) return `${timestampType} nanos must be from 0 to 999999999 inclusive, not ${nanos}`;
  if (seconds < secondsMin || seconds > secondsMax) {
    return `${timestampType} seconds must be from ${secondsMin} (0001-01-01T00:00:00Z) to ${secondsMax} (9999-12-31T23:59:59Z) inclusive, not ${seconds}`;
  }
  return undefined;
}

const secondsMin = -62135596800n;
const secondsMax = 253402300799n;

/** A Timestamp value of a message that is out of range: its field path (as above) and why. */
export type TimestampOutOfRange = Omit<ImpossibleTimestamp, "key">;

/**
 * The first Timestamp field of `message`, a `desc` message as parsed from binary, whose value is
 * out of range (timestampOutOfRange); undefined when there is none, or when `desc` holds no
 * Timestamp (then nothing is walked).
 */
export function findTimestampOutOfRange(desc: DescMessage, message: Message): TimestampOutOfRange | undefined {
  if (!hasTimestamp(desc)) return undefined;
  return outOfRangeIn(reflect(desc, message, false));
}

function outOfRangeIn(r: ReflectMessage): TimestampOutOfRange | undefined {
  for (const f of r.fields) {
    if (!r.isSet(f)) continue;
    const at = (suffix: string, inner?: TimestampOutOfRange) => inner && { field: `${f.name}${suffix}${inner.field === "" ? "" : `.${inner.field}`}`, reason: inner.reason };
    let found: TimestampOutOfRange | undefined;
    switch (f.fieldKind) {
      case "message":
        found = at("", messageOutOfRange(r.get(f)));
        break;
      case "list":
        if (f.listKind !== "message") break;
        for (let i = 0; i < r.get(f).size && !found; i++) found = at(`[${i}]`, messageOutOfRange(r.get(f).get(i) as ReflectMessage));
        break;
      case "map":
        if (f.mapKind !== "message") break;
        for (const [k, v] of r.get(f)) {
          found = at(`[${JSON.stringify(String(k))}]`, messageOutOfRange(v as ReflectMessage));
          if (found) break;
        }
        break;
    }
    if (found) return found;
  }
  return undefined;
}

/** A message value: a Timestamp's range, or a message of Tessera's to walk ("" for the value itself). */
function messageOutOfRange(r: ReflectMessage): TimestampOutOfRange | undefined {
  const typeName = r.desc.typeName;
  if (typeName === timestampType) {
    const t = r.message as unknown as { seconds: bigint | number | string; nanos: number };
    const reason = timestampOutOfRange(BigInt(t.seconds), t.nanos);
    return reason === undefined ? undefined : { field: "", reason };
  }
  if (typeName.startsWith("google.protobuf.") || !hasTimestamp(r.desc)) return undefined;
  return outOfRangeIn(r);
}
