// Every error reason Tessera can send is documented in the protos, which are the API reference
// (read here from the descriptors with source info that reflection serves, gen/<file>.binpb):
// tessera/options/v1/options.proto explains each one, and each API's service comment lists the
// reasons its methods may answer, the ones common to every API included.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { fromBinary } from "@bufbuild/protobuf";
import { FileDescriptorSetSchema, type FileDescriptorProto } from "@bufbuild/protobuf/wkt";
import { Reasons } from "../../src/core/errors.js";
import { ServerReasons } from "../../src/server/error-details.js";
import { TranscodeReasons } from "../../src/transcode/http-error.js";

const apiFiles = [
  "tessera/session/v1/session",
  "tessera/apitoken/v1/api_token",
  "tessera/usertoken/v1/user_token",
  "tessera/authtoken/v1/authentication_token",
  "tessera/jwt/v1/jwt",
  "tessera/key/v1/key",
];

function descriptor(name: string): FileDescriptorProto {
  const set = fromBinary(FileDescriptorSetSchema, readFileSync(new URL(`../../gen/${name}.binpb`, import.meta.url)));
  return set.file[0]!;
}

function comment(file: FileDescriptorProto, path: number[]): string {
  const l = file.sourceCodeInfo?.location.find((x) => x.path.length === path.length && x.path.every((v, i) => v === path[i]));
  return l?.leadingComments ?? "";
}

/** The UPPER_SNAKE words of a text, but the three that are not reasons. */
function upperWords(text: string): Set<string> {
  return new Set([...text.matchAll(/\b[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*\b/g)].map((m) => m[0]).filter((w) => w.length > 2 && !["API", "REST", "CORS"].includes(w)));
}

const all = new Set<string>([...Object.values(Reasons), ...Object.values(ServerReasons), ...Object.values(TranscodeReasons)]);
/** What any method of any API may answer: the call's own failures and the REST transcoder's. */
const common = new Set<string>([
  ...Object.values(ServerReasons).filter((r) => r !== "SERVICE_NOT_FOUND" && r !== "TOO_MANY_STREAMS" && r !== "ROUTE_NOT_FOUND" && r !== "METHOD_NOT_ALLOWED"),
  ...Object.values(TranscodeReasons),
  "STORE_UNAVAILABLE",
  "NO_ACCESS_RULE",
]);

describe("error reasons are documented in the protos", () => {
  it("every reason name is UPPER_SNAKE, and the three lists agree where they share a name", () => {
    for (const r of all) assert.match(r, /^[A-Z][A-Z0-9]*(_[A-Z0-9]+)*$/);
    assert.equal(ServerReasons.INTERNAL, Reasons.INTERNAL);
  });

  it("options.proto explains each reason once, and names no other", () => {
    const text = comment(descriptor("tessera/options/v1/options"), [2]); // the package statement's comment
    const explained = [...text.matchAll(/^ - ([A-Z][A-Z0-9_]+): /gm)].map((m) => m[1]!);
    assert.equal(new Set(explained).size, explained.length, "each once");
    assert.deepEqual(new Set(explained), all);
  });

  const listed = new Set<string>();
  for (const name of apiFiles) {
    const file = descriptor(name);
    file.service.forEach((service, i) => {
      it(`${file.package}.${service.name} lists its reasons, the common ones included, and only real ones`, () => {
        const text = comment(file, [6, i]);
        const at = text.indexOf("Error reasons (`google.rpc.ErrorInfo.reason`, domain \"tessera\"");
        assert.ok(at >= 0, "the service comment has an Error reasons paragraph");
        const words = upperWords(text.slice(at).split("\n\n", 1)[0]!);
        for (const w of words) assert.ok(all.has(w), `${w} is a reason Tessera sends`);
        for (const c of common) assert.ok(words.has(c), `${c} is listed`);
        for (const w of words) listed.add(w);
      });
    });
  }

  it("every reason is listed by at least one API (SERVICE_NOT_FOUND belongs to grpc.health.v1, TOO_MANY_STREAMS to it and reflection)", () => {
    assert.deepEqual(new Set([...listed, "SERVICE_NOT_FOUND", "TOO_MANY_STREAMS"]), all);
  });
});
