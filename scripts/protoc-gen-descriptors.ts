// A local buf plugin (see buf.gen.yaml): for every file it is asked to generate, writes
// `<file>.binpb` beside the generated TypeScript: a google.protobuf.FileDescriptorSet holding
// that one file's descriptor WITH its source info (the proto comments). The descriptors that
// protoc-gen-es embeds in gen/ carry none; server reflection serves these instead, so grpcurl
// `describe` and `buf curl` show the API reference (src/server/reflection.ts).
//
// Run by `npm run generate` as `node --import tsx scripts/protoc-gen-descriptors.ts`.
//
// CodeGeneratorResponse.File.content is a proto2 `string`, read by buf (and protoc) as bytes;
// protobuf-es would encode a JS string as UTF-8, which binary descriptors are not. So the
// response is written field by field with protobuf-es's BinaryWriter: the same wire format, the
// bytes as they are.
import { create, fromBinary, protoInt64, toBinary } from "@bufbuild/protobuf";
import {
  CodeGeneratorRequestSchema,
  CodeGeneratorResponse_Feature,
  FileDescriptorSetSchema,
} from "@bufbuild/protobuf/wkt";
import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire";

/** CodeGeneratorResponse field numbers (google/protobuf/compiler/plugin.proto). */
const responseField = { supportedFeatures: 2, file: 15 } as const;
const fileField = { name: 1, content: 15 } as const;

async function readStdin(): Promise<Uint8Array> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** `tessera/session/v1/session.proto` -> `tessera/session/v1/session.binpb`. */
function outputName(protoFile: string): string {
  return protoFile.replace(/\.proto$/, "") + ".binpb";
}

function generate(requestBytes: Uint8Array): Uint8Array {
  const request = fromBinary(CodeGeneratorRequestSchema, requestBytes);
  const w = new BinaryWriter();
  w.tag(responseField.supportedFeatures, WireType.Varint).uint64(protoInt64.parse(CodeGeneratorResponse_Feature.PROTO3_OPTIONAL));
  const byName = new Map(request.protoFile.map((f) => [f.name, f]));
  for (const name of request.fileToGenerate) {
    const file = byName.get(name);
    if (!file) throw new Error(`${name} is to be generated but the request does not hold it`);
    const content = toBinary(FileDescriptorSetSchema, create(FileDescriptorSetSchema, { file: [file] }));
    w.tag(responseField.file, WireType.LengthDelimited).fork();
    w.tag(fileField.name, WireType.LengthDelimited).string(outputName(name));
    w.tag(fileField.content, WireType.LengthDelimited).bytes(content);
    w.join();
  }
  return w.finish();
}

process.stdout.write(generate(await readStdin()));
