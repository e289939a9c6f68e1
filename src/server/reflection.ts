// grpc.reflection.v1 and v1alpha, so `buf curl` and grpcurl work without a local schema.
// The two versions have the same messages under different packages; one implementation
// serves both.
//
// The descriptors served are documented: `npm run generate` writes, beside each generated
// file, `<file>.binpb` with the file's descriptor and its source info (the proto comments,
// which the descriptors protoc-gen-es embeds lack; scripts/protoc-gen-descriptors.ts), so
// grpcurl `describe` and `buf curl` show the API reference. A file without one (the
// google/protobuf well-known types) is served from its embedded descriptor.
import { existsSync, readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";
import { create, createRegistry, fromBinary, toBinary, type DescFile, type DescMessage, type DescService, type MessageShape } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema, FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import { file_google_rpc_error_details } from "../../gen/google/rpc/error_details_pb.js";
import { file_google_rpc_status } from "../../gen/google/rpc/status_pb.js";
import * as v1 from "../../gen/grpc/reflection/v1/reflection_pb.js";
import { projectFile } from "../project-files.js";
import { shownRequestText } from "../core/text.js";
import { credentialShaped } from "../credential-shapes.js";
import * as v1alpha from "../../gen/grpc/reflection/v1alpha/reflection_pb.js";

type Reflection = typeof v1.ServerReflection;

/** Files of the given services (and `extra` files) with all their transitive imports, dependencies first. */
function filesOf(services: readonly DescService[], extra: readonly DescFile[]): DescFile[] {
  const seen = new Set<string>();
  const out: DescFile[] = [];
  const visit = (f: DescFile) => {
    if (seen.has(f.name)) return;
    seen.add(f.name);
    for (const d of f.dependencies) visit(d);
    out.push(f);
  };
  for (const s of services) visit(s.file);
  for (const f of extra) visit(f);
  return out;
}

/** gen/, found from the project root (src/ under tsx, dist/src/ compiled). */
const generated = pathToFileURL(`${projectFile("gen")}/`);

/**
 * The descriptor of `file` with source info, from gen/<file>.binpb; the embedded one (no
 * comments) when there is none. A .binpb that is not this file's descriptor is an error naming
 * it (the reflection call fails; test/proto keeps gen/ in step with the protos).
 */
export function documentedDescriptor(file: DescFile, dir: URL = generated): Uint8Array {
  const name = file.proto.name;
  const path = new URL(name.replace(/\.proto$/, ".binpb"), dir);
  if (!existsSync(path)) return toBinary(FileDescriptorProtoSchema, file.proto);
  const set = fromBinary(FileDescriptorSetSchema, readFileSync(path));
  const proto = set.file.length === 1 ? set.file[0]! : undefined;
  if (proto?.name !== name || proto.package !== file.proto.package) {
    throw new Error(`${path.pathname} does not hold the descriptor of ${name}: run npm run generate`);
  }
  return toBinary(FileDescriptorProtoSchema, proto);
}

function createReflectionImpl(services: readonly DescService[], extra: readonly DescFile[], hidden: (text: string) => boolean) {
  const files = filesOf(services, extra);
  const registry = createRegistry(...files);
  // By file name as reflection clients give it (`tessera/key/v1/key.proto`; DescFile.name has
  // no `.proto`).
  const byName = new Map(files.map((f) => [f.proto.name, f]));
  // Read from gen/ when a client first asks for the file, not at start-up (a few ms each).
  const encoded = new Map<string, Uint8Array>();
  const descriptor = (f: DescFile): Uint8Array => {
    let d = encoded.get(f.name);
    if (d === undefined) encoded.set(f.name, (d = documentedDescriptor(f)));
    return d;
  };
  // The file first, then everything it imports, as grpc-go does; and as grpc-go does
  // (reflection/internal/internal.go, FileDescWithDependencies), an import already sent on this
  // stream is left out (the client has it): a file asked for again is answered with itself alone,
  // not the 70 KB of JwtService's imports rebuilt and compressed each time. `sent` is the stream's
  // (at most every file served: a few dozen names).
  const withDeps = (f: DescFile, sent: Set<string>): Uint8Array[] => {
    const files = closure(f).filter((x, i) => i === 0 || !sent.has(x.name));
    for (const x of files) sent.add(x.name);
    return files.map(descriptor);
  };
  const closure = (f: DescFile): DescFile[] => {
    const seen = new Set<string>();
    const out: DescFile[] = [];
    const visit = (x: DescFile) => {
      if (seen.has(x.name)) return;
      seen.add(x.name);
      out.push(x);
      for (const d of x.dependencies) visit(d);
    };
    visit(f);
    return out;
  };
  const serviceNames = services.map((s) => s.typeName);

  // A name the request gives, as a "not found" error shows it (shownRequestText): as sent when
  // quoting would leave it unchanged, else cut to 64 characters and escaped, or * when it has a
  // credential's shape; a symbol of 10 000 characters was named whole.
  const shown = (name: string) => shownRequestText(name, hidden);
  const answer = (req: v1.ServerReflectionRequest, sent: Set<string>): v1.ServerReflectionResponse["messageResponse"] => {
    const notFound = (what: string) => ({
      case: "errorResponse" as const,
      value: create(v1.ErrorResponseSchema, { errorCode: 5, errorMessage: `${what} not found` }),
    });
    const fileResponse = (f: DescFile | undefined, what: string) =>
      f
        ? { case: "fileDescriptorResponse" as const, value: create(v1.FileDescriptorResponseSchema, { fileDescriptorProto: withDeps(f, sent) }) }
        : notFound(what);
    const m = req.messageRequest;
    switch (m.case) {
      case "listServices":
        return {
          case: "listServicesResponse",
          value: create(v1.ListServiceResponseSchema, { service: serviceNames.map((name) => ({ name })) }),
        };
      case "fileByFilename":
        return fileResponse(byName.get(m.value), `file ${shown(m.value)}`);
      case "fileContainingSymbol": {
        const name = m.value.replace(/^\./, "");
        let d = registry.get(name);
        if (!d) {
          // A method: <service>.<method>
          const dot = name.lastIndexOf(".");
          const svc = registry.getService(name.slice(0, dot));
          if (svc?.methods.some((x) => x.name === name.slice(dot + 1))) d = svc;
        }
        const file = d ? ("file" in d ? d.file : undefined) : undefined;
        return fileResponse(file, `symbol ${shown(m.value)}`);
      }
      case "fileContainingExtension": {
        const target = registry.getMessage(m.value.containingType);
        const ext = target ? registry.getExtensionFor(target, m.value.extensionNumber) : undefined;
        return fileResponse(ext?.file, `extension ${m.value.extensionNumber} of ${shown(m.value.containingType)}`);
      }
      case "allExtensionNumbersOfType": {
        const msg = registry.getMessage(m.value);
        if (!msg) return notFound(`type ${shown(m.value)}`);
        const numbers: number[] = [];
        for (const t of registry) if (t.kind === "extension" && t.extendee.typeName === msg.typeName) numbers.push(t.number);
        return {
          case: "allExtensionNumbersResponse",
          value: create(v1.ExtensionNumberResponseSchema, { baseTypeName: msg.typeName, extensionNumber: numbers }),
        };
      }
      default:
        return {
          case: "errorResponse",
          value: create(v1.ErrorResponseSchema, { errorCode: 3, errorMessage: "unsupported reflection request" }),
        };
    }
  };

  const impl: ServiceImpl<Reflection> = {
    async *serverReflectionInfo(requests) {
      // The files this stream has sent (by DescFile.name).
      const sent = new Set<string>();
      for await (const req of requests) {
        yield create(v1.ServerReflectionResponseSchema, {
          validHost: req.host,
          originalRequest: req,
          messageResponse: answer(req, sent),
        });
      }
    },
  };
  return impl;
}

/**
 * Both reflection services, describing `services` (and themselves), and the types errors carry
 * in their details (google.rpc.Status, ErrorInfo, RetryInfo, BadRequest): no service imports
 * them, but a client such as grpcurl resolves a detail's type by asking reflection for it.
 * `hidden`: the names a "not found" error does not show (see unquotable).
 */
export function reflectionServices(services: readonly DescService[], hidden: (text: string) => boolean = credentialShaped): { service: DescService; impl: object }[] {
  const all = [...services, v1.ServerReflection, v1alpha.ServerReflection];
  const impl = createReflectionImpl(all, [file_google_rpc_status, file_google_rpc_error_details], hidden);
  // v1alpha messages are wire-identical to v1: the same implementation serves both, with the
  // messages converted through their binary form.
  return [
    { service: v1.ServerReflection, impl },
    { service: v1alpha.ServerReflection, impl: alphaImpl(impl) },
  ];
}

function alphaImpl(impl: ServiceImpl<Reflection>): ServiceImpl<typeof v1alpha.ServerReflection> {
  return {
    async *serverReflectionInfo(requests, ctx) {
      async function* converted() {
        for await (const r of requests) yield convert(r, v1alpha.ServerReflectionRequestSchema, v1.ServerReflectionRequestSchema);
      }
      for await (const res of impl.serverReflectionInfo(converted(), ctx)) {
        yield convert(res as v1.ServerReflectionResponse, v1.ServerReflectionResponseSchema, v1alpha.ServerReflectionResponseSchema);
      }
    },
  };
}

function convert<A extends DescMessage, B extends DescMessage>(m: MessageShape<A>, from: A, to: B): MessageShape<B> {
  return fromBinary(to, toBinary(from, m));
}
