import { create, fromJson, type DescField, type DescMessage } from "@bufbuild/protobuf";
import { reflect, type ReflectList, type ReflectMessage } from "@bufbuild/protobuf/reflect";
import { isWrapperDesc } from "@bufbuild/protobuf/wkt";
import { ParseFailure, parseEnum, parseScalar } from "./scalar.js";
import { impossibleTimestamp } from "./timestamp.js";

/**
 * Where a textual argument (path variable, query parameter, form field) goes in a request
 * message: the chain of fields from the root, and how to parse the text for the leaf.
 * Resolved once per (message, name) and reused, so a request does no descriptor walks.
 */
export interface FieldTarget {
  /** Dotted proto-name path, for messages. */
  readonly path: string;
  readonly fields: readonly DescField[];
  readonly repeated: boolean;
  /** Parses the text into a value ReflectMessage.set / ReflectList.add accept. */
  readonly parse: (text: string) => unknown;
}

/** Why a name cannot take a textual argument. `unknown`: no such field at all. */
export interface TargetRefusal {
  readonly reason: string;
  readonly unknown: boolean;
}

export function isFieldTarget(t: FieldTarget | TargetRefusal): t is FieldTarget {
  return "fields" in t;
}

const byName = new WeakMap<DescMessage, Map<string, DescField>>();

/** A field by proto name or by JSON name. */
export function fieldByName(desc: DescMessage, name: string): DescField | undefined {
  let m = byName.get(desc);
  if (!m) {
    m = new Map();
    for (const f of desc.fields) {
      m.set(f.name, f);
      m.set(f.jsonName, f);
    }
    byName.set(desc, m);
  }
  return m.get(name);
}

// Well-known types with a string JSON form that fits in one argument.
const stringFormWkt = new Set(["google.protobuf.Timestamp", "google.protobuf.Duration", "google.protobuf.FieldMask"]);

/**
 * Resolves a dotted field path (proto or JSON names) to a target, or returns the reason it
 * cannot take a textual argument.
 */
export function resolveFieldTarget(root: DescMessage, names: readonly string[]): FieldTarget | TargetRefusal {
  const fields: DescField[] = [];
  let desc = root;
  for (let i = 0; i < names.length; i++) {
    const f = fieldByName(desc, names[i]!);
    if (!f) {
      return { reason: `${desc.typeName} has no field "${names[i]}"`, unknown: true };
    }
    fields.push(f);
    if (i < names.length - 1) {
      if (f.fieldKind !== "message" || isWrapperDesc(f.message) || stringFormWkt.has(f.message.typeName)) {
        return { reason: `"${names.slice(0, i + 1).join(".")}" is not a message with fields`, unknown: false };
      }
      desc = f.message;
    }
  }
  const leaf = fields[fields.length - 1]!;
  const path = fields.map((f) => f.name).join(".");
  const parse = leafParser(leaf);
  if (typeof parse === "string") {
    return { reason: `"${path}" ${parse}`, unknown: false };
  }
  return { path, fields, repeated: leaf.fieldKind === "list", parse };
}

function leafParser(f: DescField): ((text: string) => unknown) | string {
  switch (f.fieldKind) {
    case "scalar":
      return (t) => parseScalar(f.scalar, t);
    case "enum":
      return (t) => parseEnum(f.enum, t);
    case "message":
      return messageParser(f.message);
    case "list":
      switch (f.listKind) {
        case "scalar":
          return (t) => parseScalar(f.scalar, t);
        case "enum":
          return (t) => parseEnum(f.enum, t);
        case "message": {
          const p = messageParser(f.message);
          return typeof p === "string" ? p : (t) => {
            const v = p(t);
            // Lists take the message itself, not a ReflectMessage.
            return v instanceof ParseFailure ? v : (v as ReflectMessage).message;
          };
        }
      }
      break;
    case "map":
      return "is a map and cannot be set from a single argument";
  }
}

function messageParser(desc: DescMessage): ((text: string) => unknown) | string {
  if (isWrapperDesc(desc)) {
    const inner = desc.fields[0]!;
    return (t) => {
      const v = inner.fieldKind === "scalar" ? parseScalar(inner.scalar, t) : new ParseFailure(desc.typeName);
      if (v instanceof ParseFailure) {
        return v;
      }
      return reflect(desc, create(desc, { value: v } as never), false);
    };
  }
  if (stringFormWkt.has(desc.typeName)) {
    const timestamp = desc.typeName === "google.protobuf.Timestamp";
    return (t) => {
      try {
        const value = reflect(desc, fromJson(desc, t), false);
        // protobuf-es carries an impossible date over into the next month (timestamp.ts).
        if (timestamp && impossibleTimestamp(t) !== undefined) return new ParseFailure(`${desc.typeName} in its JSON form`);
        return value;
      } catch {
        return new ParseFailure(`${desc.typeName} in its JSON form`);
      }
    };
  }
  return `is a message (${desc.typeName}); set its fields with "name.field"`;
}

/**
 * Parses `text` and stores it at the target inside `root`, creating the intermediate messages.
 * Repeated fields append; singular fields are overwritten. Returns the failure, if any.
 */
export function applyFieldTarget(root: ReflectMessage, target: FieldTarget, text: string): ParseFailure | undefined {
  const value = target.parse(text);
  if (value instanceof ParseFailure) {
    return value;
  }
  let r = root;
  const last = target.fields.length - 1;
  for (let i = 0; i < last; i++) {
    const f = target.fields[i]!;
    const child = r.get(f) as ReflectMessage;
    r.set(f, child);
    r = child;
  }
  const leaf = target.fields[last]!;
  if (target.repeated) {
    (r.get(leaf) as ReflectList).add(value);
  } else {
    r.set(leaf, value);
  }
  return undefined;
}
