// An enum field is given in JSON as one of its value names or as a number (the proto3 JSON
// mapping). The transcoder reads a JSON body with unknown fields ignored (request.ts), and with
// that option protobuf-es drops an enum value given a name the enum does not have ("COLOR_BLUE",
// or a number as a string, "1") as it drops an unknown key: the field is left unset, and the RPC
// called as if the client had not given it, where the query refuses color=COLOR_BLUE (400) and
// the router's JSON decoder (Connect, gRPC and gRPC-Web in JSON, unknown fields not ignored)
// refuses the name. findUnknownEnumName finds such a value, for the transcoder to refuse naming
// the field. A number is left to protobuf-es (an open enum takes one it does not name, as the
// query does).
import type { DescEnum, DescMessage, JsonValue } from "@bufbuild/protobuf";
import { findRefusedValue, holder, type JsonValueCheck, type RefusedJsonValue, type ValueType } from "./json-fields.js";

const isEnum = (t: ValueType): t is DescEnum => typeof t === "object" && t.kind === "enum";

/** Whether a message type holds an enum field at any depth (computed once per type). */
const hasEnumField = holder(isEnum);

/** Why a JSON value of type `t` is refused here, or undefined (values of other types are left to protobuf-es). */
function unknownName(t: ValueType, value: JsonValue): string | undefined {
  if (!isEnum(t) || typeof value !== "string" || t.values.some((v) => v.name === value)) return undefined;
  // protobuf-es's own words for a name it does not know (json-error.ts), without the name.
  return `cannot decode enum ${t.typeName} from JSON: unknown value name`;
}

const enumCheck: JsonValueCheck = { holds: hasEnumField, refuse: unknownName };

/**
 * The first enum field of `json`, read as a `desc` message, given a string that names no value
 * of its enum: its field path in proto names ("item.color") and why; undefined when there is
 * none, or when `desc` holds no enum field (then nothing is walked).
 */
export function findUnknownEnumName(desc: DescMessage, json: JsonValue): RefusedJsonValue | undefined {
  return findRefusedValue(desc, json, enumCheck);
}
