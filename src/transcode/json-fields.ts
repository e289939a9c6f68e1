// A walk of a JSON request message, read as its message type, to the first value a check refuses
// (timestamp.ts: a Timestamp that names no real time; json-numbers.ts: a number given as a string
// that is no number's text; json-enums.ts: an enum value given a name the enum does not have).
// Only the types that hold a value the check looks at are walked (known once per type); keys
// that name no field, and values of the wrong JSON type, are left to protobuf-es, which reads
// the message next.
import type { DescEnum, DescField, DescMessage, JsonValue, ScalarType } from "@bufbuild/protobuf";

/** The type of a field's value: a scalar's, a message's, or an enum's. */
export type ValueType = ScalarType | DescMessage | DescEnum;

/** What a walk looks for. */
export interface JsonValueCheck {
  /** Whether a message of this type holds a value `refuse` looks at, at any depth (holder() below). */
  holds(desc: DescMessage): boolean;
  /** Why `value`, of type `t` (a map's key type too, for its keys), is refused; undefined when it is not. */
  refuse(t: ValueType, value: JsonValue): string | undefined;
}

/** A refused value: where it is, and why. */
export interface RefusedJsonValue {
  /** The top-level key of the JSON object it is under, as the client wrote it. */
  key: string;
  /** Its field path in proto names ("expiration_time", "filter.since", "times[1]"). */
  field: string;
  /** Why: the check's reason. */
  reason: string;
}

/**
 * Whether a message type holds a field whose value type `wanted` names (in a list or a map's
 * value too, or a map key's type), at any depth of Tessera's own messages (a google.protobuf
 * type is not walked into); computed once per type.
 */
export function holder(wanted: (t: ValueType) => boolean): (desc: DescMessage) => boolean {
  const known = new WeakMap<DescMessage, boolean>();
  const holds = (desc: DescMessage, seen: Set<DescMessage>): boolean => {
    const cached = known.get(desc);
    if (cached !== undefined) return cached;
    if (seen.has(desc)) return false;
    seen.add(desc);
    const has = (t: ValueType | undefined) =>
      t !== undefined && (wanted(t) || (typeof t === "object" && t.kind === "message" && !t.typeName.startsWith("google.protobuf.") && holds(t, seen)));
    let found = false;
    for (const f of desc.fields) found ||= has(valueType(f)) || (f.fieldKind === "map" && wanted(f.mapKey));
    seen.delete(desc);
    if (seen.size === 0) known.set(desc, found);
    return found;
  };
  return (desc) => holds(desc, new Set());
}

/** The type of a field's values (a list's items, a map's values). */
function valueType(f: DescField): ValueType {
  switch (f.fieldKind) {
    case "scalar":
      return f.scalar;
    case "message":
      return f.message;
    case "enum":
      return f.enum;
    case "list":
      return f.listKind === "scalar" ? f.scalar : f.listKind === "message" ? f.message : f.enum;
    case "map":
      return f.mapKind === "scalar" ? f.scalar : f.mapKind === "message" ? f.message : f.enum;
  }
}

/**
 * The first value of `json`, read as a `desc` message, that `check` refuses; undefined when there
 * is none, or when `desc` holds nothing it looks at (then nothing is walked).
 */
export function findRefusedValue(desc: DescMessage, json: JsonValue, check: JsonValueCheck): RefusedJsonValue | undefined {
  if (!check.holds(desc) || json === null || typeof json !== "object" || Array.isArray(json)) return undefined;
  for (const [key, value] of Object.entries(json)) {
    // By proto name or JSON name, as protobuf-es reads a key.
    const f = desc.fields.find((x) => x.jsonName === key || x.name === key);
    const found = f && inField(f, value, check);
    if (found) return { key, ...found };
  }
  return undefined;
}

type Found = Omit<RefusedJsonValue, "key">;

function inField(f: DescField, value: JsonValue, check: JsonValueCheck): Found | undefined {
  const t = valueType(f);
  const at = (suffix: string, inner?: Found) => inner && { field: `${f.name}${suffix}${inner.field === "" ? "" : `.${inner.field}`}`, reason: inner.reason };
  switch (f.fieldKind) {
    case "scalar":
    case "message":
    case "enum":
      return at("", inValue(t, value, check));
    case "list":
      if (!Array.isArray(value)) return undefined;
      for (let i = 0; i < value.length; i++) {
        const found = at(`[${i}]`, inValue(t, value[i]!, check));
        if (found) return found;
      }
      return undefined;
    case "map":
      if (value === null || typeof value !== "object" || Array.isArray(value)) return undefined;
      for (const [k, v] of Object.entries(value)) {
        // A key is the client's data: the map is named.
        const key = check.refuse(f.mapKey, k);
        if (key !== undefined) return { field: f.name, reason: key };
        const found = at(`[${JSON.stringify(k)}]`, inValue(t, v, check));
        if (found) return found;
      }
      return undefined;
    default:
      return undefined;
  }
}

/** A value: refused itself (field ""), or a message of Tessera's, walked. */
function inValue(t: ValueType, value: JsonValue, check: JsonValueCheck): Found | undefined {
  const reason = check.refuse(t, value);
  if (reason !== undefined) return { field: "", reason };
  if (typeof t !== "object" || t.kind !== "message" || t.typeName.startsWith("google.protobuf.")) return undefined;
  const found = findRefusedValue(t, value, check);
  return found && { field: found.field, reason: found.reason };
}
