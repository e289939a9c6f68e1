// A local buf plugin (see buf.gen.yaml): writes openapi.json, the OpenAPI 3.1 description of
// Tessera's REST API, from the CodeGeneratorRequest's descriptors. Unlike the descriptors
// embedded in gen/, these keep the source info, so the proto comments become the descriptions.
// The routes, credentials and statuses come from src/openapi/document.ts, which compiles them
// as the server does.
//
// Run by `npm run generate` as `node --import tsx scripts/protoc-gen-openapi.ts`.
import { readFileSync } from "node:fs";
import { create, createFileRegistry, hasOption, protoInt64, type DescService } from "@bufbuild/protobuf";
import { CodeGeneratorResponse_Feature, CodeGeneratorResponseSchema, FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import { getComments, runNodeJs, type Plugin } from "@bufbuild/protoplugin";
import { access } from "../gen/tessera/options/v1/options_pb.js";
import { buildOpenApiDocument, type Describe } from "../src/openapi/document.js";

const { version } = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string };

/** A proto comment as Markdown: the one space after `//` removed, the line breaks kept. */
const describe: Describe = (desc) => {
  const text = getComments(desc).leading;
  if (text === undefined) return undefined;
  const lines = text.split("\n").map((l) => (l.startsWith(" ") ? l.slice(1) : l).trimEnd());
  return lines.join("\n").trim() || undefined;
};

/** Tessera's services: those whose methods declare the credential they take. */
function isTesseraService(s: DescService): boolean {
  return s.methods.some((m) => hasOption(m, access));
}

const plugin: Plugin = {
  name: "protoc-gen-openapi",
  version: `v${version}`,
  run(request) {
    const registry = createFileRegistry(create(FileDescriptorSetSchema, { file: request.protoFile }));
    const services = request.fileToGenerate.flatMap((name) => registry.getFile(name)?.services ?? []).filter(isTesseraService);
    // The request holds the whole workspace (buf.gen.yaml), the health, reflection and test
    // services too: only Tessera's are described; a request without them writes no document.
    const file = services.length === 0 ? [] : [{ name: "openapi.json", content: JSON.stringify(buildOpenApiDocument({ services, version, describe }), null, 2) + "\n" }];
    return create(CodeGeneratorResponseSchema, {
      supportedFeatures: protoInt64.parse(CodeGeneratorResponse_Feature.PROTO3_OPTIONAL),
      file,
    });
  },
};

runNodeJs(plugin);
