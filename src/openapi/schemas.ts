// Protobuf messages -> JSON Schema (2020-12, as OpenAPI 3.1 uses it), in the proto3 JSON form the
// transcoder reads and writes: json_name keys, 64-bit integers as strings, well-known types in
// their JSON forms.
//
// Two variants per message. "output" describes what the transcoder writes under its
// default-value policy: implicit-presence fields (plain proto3 scalars, enums, repeated and map
// fields) are always present, so they are `required`; fields with explicit presence are not; no
// other keys appear. "input" describes what it reads: every field optional, unknown keys ignored.
import { ScalarType, type DescEnum, type DescField, type DescMessage } from "@bufbuild/protobuf";
import { FeatureSet_FieldPresence, isWrapperDesc } from "@bufbuild/protobuf/wkt";

export type JsonSchema = { [key: string]: unknown };
export type Direction = "input" | "output";
export type Describe = (desc: DescMessage | DescField | DescEnum) => string | undefined;

const componentPrefix = "#/components/schemas/";

/** The components of one document, built on demand as operations refer to messages. */
export class SchemaSet {
  readonly components: Record<string, JsonSchema> = {};
  private readonly outputTypes = new Set<string>();

  constructor(private readonly describe: Describe) {}

  /**
   * Records the messages an answer may contain, before any schema is built: a message used in
   * both directions gets its input variant under `<type name>.Input`.
   */
  noteOutput(message: DescMessage): void {
    if (this.outputTypes.has(message.typeName) || wellKnown(message, "output") !== undefined) return;
    this.outputTypes.add(message.typeName);
    for (const f of message.fields) {
      if (f.fieldKind === "message" || (f.fieldKind === "list" && f.listKind === "message")) this.noteOutput(f.message);
      if (f.fieldKind === "map" && f.mapKind === "message") this.noteOutput(f.message);
    }
  }

  /** A schema for a message: a reference to its component, or the JSON form of a well-known type. */
  message(message: DescMessage, dir: Direction): JsonSchema {
    const wkt = wellKnown(message, dir);
    if (wkt !== undefined) return wkt;
    const name = dir === "input" && this.outputTypes.has(message.typeName) ? `${message.typeName}.Input` : message.typeName;
    if (!(name in this.components)) {
      this.components[name] = {}; // placeholder: recursive messages refer to it while it is built
      this.components[name] = this.messageSchema(message, dir);
    }
    return { $ref: componentPrefix + name };
  }

  /** The schema of one field's JSON value (a list or map included), with its description. */
  field(field: DescField, dir: Direction): JsonSchema {
    let schema: JsonSchema;
    switch (field.fieldKind) {
      case "scalar":
        schema = scalar(field.scalar, dir);
        break;
      case "enum":
        schema = this.enumSchema(field.enum);
        break;
      case "message":
        schema = this.message(field.message, dir);
        break;
      case "list":
        schema = {
          type: "array",
          items:
            field.listKind === "scalar"
              ? scalar(field.scalar, dir)
              : field.listKind === "enum"
                ? this.enumSchema(field.enum)
                : this.message(field.message, dir),
        };
        break;
      case "map":
        schema = {
          type: "object",
          additionalProperties:
            field.mapKind === "scalar"
              ? scalar(field.scalar, dir)
              : field.mapKind === "enum"
                ? this.enumSchema(field.enum)
                : this.message(field.message, dir),
        };
        break;
    }
    const description = this.describe(field);
    return description ? { ...schema, description } : schema;
  }

  private messageSchema(message: DescMessage, dir: Direction): JsonSchema {
    const properties: Record<string, JsonSchema> = {};
    const required: string[] = [];
    for (const f of message.fields) {
      properties[f.jsonName] = this.field(f, dir);
      if (alwaysWritten(f)) required.push(f.jsonName);
    }
    const schema: JsonSchema = { type: "object" };
    const description = this.describe(message);
    if (description) schema.description = description;
    schema.properties = properties;
    if (dir === "output") {
      if (required.length > 0) schema.required = required;
      schema.additionalProperties = false;
    }
    return schema;
  }

  private enumSchema(desc: DescEnum): JsonSchema {
    if (desc.typeName === "google.protobuf.NullValue") return { type: "null" };
    const names = { type: "string", enum: desc.values.map((v) => v.name) };
    const description = this.describe(desc);
    // Open enums (proto3) also carry numbers the schema does not name; they are written as numbers.
    const schema: JsonSchema = desc.open ? { anyOf: [names, { type: "integer", format: "int32" }] } : names;
    return description ? { ...schema, description } : schema;
  }
}

/** Whether the transcoder always writes the field (see the default-value policy). */
export function alwaysWritten(f: DescField): boolean {
  if (f.fieldKind === "list" || f.fieldKind === "map") return true;
  return f.oneof === undefined && f.presence === FeatureSet_FieldPresence.IMPLICIT;
}

function scalar(type: ScalarType, dir: Direction): JsonSchema {
  switch (type) {
    case ScalarType.STRING:
      return { type: "string" };
    case ScalarType.BOOL:
      return { type: "boolean" };
    case ScalarType.BYTES:
      return { type: "string", contentEncoding: "base64" };
    case ScalarType.INT32:
    case ScalarType.SINT32:
    case ScalarType.SFIXED32:
      return { type: "integer", format: "int32" };
    case ScalarType.UINT32:
    case ScalarType.FIXED32:
      return { type: "integer", minimum: 0, maximum: 4294967295 };
    case ScalarType.INT64:
    case ScalarType.SINT64:
    case ScalarType.SFIXED64:
      // Written as strings (proto3 JSON); read as strings or numbers.
      return dir === "output" ? { type: "string", format: "int64", pattern: "^-?[0-9]+$" } : { type: ["string", "integer"], format: "int64" };
    case ScalarType.UINT64:
    case ScalarType.FIXED64:
      return dir === "output" ? { type: "string", pattern: "^[0-9]+$" } : { type: ["string", "integer"], minimum: 0 };
    case ScalarType.DOUBLE:
    case ScalarType.FLOAT:
      return { anyOf: [{ type: "number" }, { type: "string", enum: ["NaN", "Infinity", "-Infinity"] }] };
  }
}

/** The JSON form of a well-known type, or undefined for an ordinary message. */
function wellKnown(message: DescMessage, dir: Direction): JsonSchema | undefined {
  switch (message.typeName) {
    case "google.protobuf.Timestamp":
      return { type: "string", format: "date-time" };
    case "google.protobuf.Duration":
      return { type: "string", pattern: "^-?[0-9]+(\\.[0-9]{1,9})?s$" };
    case "google.protobuf.FieldMask":
      return { type: "string" };
    case "google.protobuf.Struct":
      return { type: "object" };
    case "google.protobuf.Value":
      return {};
    case "google.protobuf.ListValue":
      return { type: "array" };
    case "google.protobuf.Empty":
      return dir === "output" ? { type: "object", additionalProperties: false } : { type: "object" };
    case "google.protobuf.Any":
      return { type: "object", properties: { "@type": { type: "string" } }, required: ["@type"] };
  }
  if (isWrapperDesc(message)) {
    const inner = message.fields[0]!;
    return inner.fieldKind === "scalar" ? scalar(inner.scalar, dir) : undefined;
  }
  return undefined;
}
