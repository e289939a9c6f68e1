// Server reflection serves documented descriptors: the file descriptors carry their source
// info, so a reflection client (grpcurl `describe`, buf curl, IDEs) shows the proto comments,
// which are the API reference. Asked through a real gRPC client (@grpc/grpc-js, the reflection
// stream) as grpcurl asks.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import * as grpc from "@grpc/grpc-js";
import { create, fromBinary, type MessageInitShape } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema, type FileDescriptorProto } from "@bufbuild/protobuf/wkt";
import {
  ServerReflection,
  ServerReflectionRequestSchema,
  type ServerReflectionResponse,
} from "../../gen/grpc/reflection/v1/reflection_pb.js";
import { ServerReflection as ServerReflectionV1alpha } from "../../gen/grpc/reflection/v1alpha/reflection_pb.js";
import { grpcMethodDefinition } from "../support/clients.js";
import { startTestServer, type TestServer } from "../support/server.js";

const run = promisify(execFile);

/**
 * One reflection exchange over gRPC: the request's answer, as grpcurl gets it, from v1 or
 * v1alpha (whose messages are v1's under another package: the answer is read as v1's).
 */
async function reflect(
  url: string,
  request: MessageInitShape<typeof ServerReflectionRequestSchema>,
  service: typeof ServerReflection | typeof ServerReflectionV1alpha = ServerReflection,
): Promise<ServerReflectionResponse> {
  const method = service.method.serverReflectionInfo;
  const Client = grpc.makeGenericClientConstructor({ ServerReflectionInfo: grpcMethodDefinition(method) }, "ServerReflection");
  const client = new Client(url.replace(/^http:\/\//, ""), grpc.credentials.createInsecure());
  try {
    return await new Promise((resolve, reject) => {
      const call = (client as unknown as { ServerReflectionInfo(): grpc.ClientDuplexStream<unknown, ServerReflectionResponse> }).ServerReflectionInfo();
      call.once("data", (res: ServerReflectionResponse) => {
        resolve(res);
        call.end();
      });
      call.once("error", reject);
      call.write(create(method.input, request as MessageInitShape<typeof method.input>));
    });
  } finally {
    client.close();
  }
}

function files(res: ServerReflectionResponse): FileDescriptorProto[] {
  assert.equal(res.messageResponse.case, "fileDescriptorResponse", JSON.stringify(res.messageResponse.value));
  return res.messageResponse.value.fileDescriptorProto.map((b) => fromBinary(FileDescriptorProtoSchema, b));
}

/** The leading comment at `path` (a SourceCodeInfo location path) of `file`. */
function commentAt(file: FileDescriptorProto, path: number[]): string | undefined {
  return file.sourceCodeInfo?.location.find((l) => l.path.length === path.length && l.path.every((x, i) => x === path[i]))?.leadingComments;
}

// FileDescriptorProto field numbers: service = 6, message_type = 4; ServiceDescriptorProto method = 2.
const serviceField = 6;
const methodField = 2;
const messageField = 4;

describe("server: reflection serves the proto comments", () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
  });
  after(async () => {
    await server.close();
  });

  it("file containing tessera.key.v1.KeyService.GetJwks: the method's comment and the message's, imports included", async () => {
    const served = files(await reflect(server.url, { messageRequest: { case: "fileContainingSymbol", value: "tessera.key.v1.KeyService.GetJwks" } }));
    assert.equal(served[0]!.name, "tessera/key/v1/key.proto", "the file first, then its imports");
    const key = served[0]!;
    const svc = key.service.findIndex((s) => s.name === "KeyService");
    const getJwks = key.service[svc]!.method.findIndex((m) => m.name === "GetJwks");
    assert.match(commentAt(key, [serviceField, svc]) ?? "", /Public signing keys, so internal services verify Tessera's JWTs offline/);
    assert.match(commentAt(key, [serviceField, svc, methodField, getJwks]) ?? "", /The JSON Web Key Set \(`GET \/\.well-known\/jwks\.json`\)/);
    const response = key.messageType.findIndex((m) => m.name === "GetJwksResponse");
    assert.equal(commentAt(key, [messageField, response]), " A JSON Web Key Set (RFC 7517).\n");
    // The imports are documented too (google/api/http.proto explains the REST bindings).
    const http = served.find((f) => f.name === "google/api/http.proto");
    assert.ok(http?.sourceCodeInfo && http.sourceCodeInfo.location.some((l) => (l.leadingComments ?? "").includes("gRPC Transcoding")));
  });

  it("every Tessera file and the health service come with source info", async () => {
    for (const symbol of [
      "tessera.session.v1.SessionService",
      "tessera.apitoken.v1.ApiTokenService",
      "tessera.usertoken.v1.UserTokenService",
      "tessera.authtoken.v1.AuthenticationTokenService",
      "tessera.jwt.v1.JwtService",
      "tessera.key.v1.KeyService",
      "grpc.health.v1.Health",
    ]) {
      const [file] = files(await reflect(server.url, { messageRequest: { case: "fileContainingSymbol", value: symbol } }));
      const svc = file!.service.findIndex((s) => `${file!.package}.${s.name}` === symbol);
      assert.ok((commentAt(file!, [serviceField, svc]) ?? "").length > 20, `${symbol} has its comment`);
    }
  });

  it("file by file name: `tessera/key/v1/key.proto` and a well-known type's file", async () => {
    const [key] = files(await reflect(server.url, { messageRequest: { case: "fileByFilename", value: "tessera/key/v1/key.proto" } }));
    assert.equal(key!.name, "tessera/key/v1/key.proto");
    assert.ok(key!.sourceCodeInfo);
    const [struct] = files(await reflect(server.url, { messageRequest: { case: "fileByFilename", value: "google/protobuf/struct.proto" } }));
    assert.equal(struct!.name, "google/protobuf/struct.proto");
    const missing = await reflect(server.url, { messageRequest: { case: "fileByFilename", value: "no/such.proto" } });
    assert.equal(missing.messageResponse.case, "errorResponse");
    assert.equal(missing.messageResponse.value?.errorCode, 5);
  });

  it("buf curl lists Tessera's methods from the documented descriptors", async () => {
    const methods = await run("node_modules/.bin/buf", ["curl", "--http2-prior-knowledge", "--list-methods", server.url]);
    assert.match(methods.stdout, /^tessera\.key\.v1\.KeyService\/GetJwks$/m);
  });

  it("serves the error detail types, so a client decodes an error's details by reflection (grpcurl asks for google.rpc.ErrorInfo)", async () => {
    const [file] = files(await reflect(server.url, { messageRequest: { case: "fileContainingSymbol", value: "google.rpc.ErrorInfo" } }));
    assert.equal(file!.name, "google/rpc/error_details.proto");
    const [status] = files(await reflect(server.url, { messageRequest: { case: "fileContainingSymbol", value: "google.rpc.Status" } }));
    assert.equal(status!.name, "google/rpc/status.proto");
  });

  it("a name it does not have is named in its error as the project quotes a request's text, over v1 and v1alpha", async () => {
    // 10 000 characters, with a C0 control, a bidirectional override and a C1 control near the start.
    const long = `tessera.\u0007\u202e\u0085.${"x".repeat(10_000 - 12)}`;
    const longShown = `"tessera.\\u0007\\u202e\\u0085.${"x".repeat(52)}"... (10000 characters)`;
    const uuid = "0b6e3f4c-9a7d-4c1e-8f2b-5d6a7c8e9f01";
    const cases: Array<[NonNullable<MessageInitShape<typeof ServerReflectionRequestSchema>["messageRequest"]>, string]> = [
      [{ case: "fileContainingSymbol", value: long }, `symbol ${longShown} not found`],
      [{ case: "fileContainingSymbol", value: "no.such.Symbol" }, "symbol no.such.Symbol not found"],
      [{ case: "fileContainingSymbol", value: uuid }, "symbol * not found"],
      [{ case: "fileByFilename", value: long }, `file ${longShown} not found`],
      [{ case: "allExtensionNumbersOfType", value: long }, `type ${longShown} not found`],
      [{ case: "fileContainingExtension", value: { containingType: long, extensionNumber: 7 } }, `extension 7 of ${longShown} not found`],
    ];
    for (const service of [ServerReflection, ServerReflectionV1alpha]) {
      for (const [messageRequest, message] of cases) {
        const res = await reflect(server.url, { messageRequest }, service);
        assert.equal(res.messageResponse.case, "errorResponse", service.typeName);
        assert.deepEqual([res.messageResponse.value.errorCode, res.messageResponse.value.errorMessage], [5, message], `${service.typeName} ${messageRequest.case}`);
      }
    }
  });
});
