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
  const [answer] = await reflectOnOneStream(url, [request], service);
  assert.ok(answer, "an answer");
  return answer;
}

/** Several exchanges on one reflection stream, as grpcurl and buf curl ask: the answers, in order. */
async function reflectOnOneStream(
  url: string,
  requests: MessageInitShape<typeof ServerReflectionRequestSchema>[],
  service: typeof ServerReflection | typeof ServerReflectionV1alpha = ServerReflection,
): Promise<ServerReflectionResponse[]> {
  const method = service.method.serverReflectionInfo;
  const Client = grpc.makeGenericClientConstructor({ ServerReflectionInfo: grpcMethodDefinition(method) }, "ServerReflection");
  const client = new Client(url.replace(/^http:\/\//, ""), grpc.credentials.createInsecure());
  try {
    return await new Promise((resolve, reject) => {
      const call = (client as unknown as { ServerReflectionInfo(): grpc.ClientDuplexStream<unknown, ServerReflectionResponse> }).ServerReflectionInfo();
      const answers: ServerReflectionResponse[] = [];
      call.on("data", (res: ServerReflectionResponse) => answers.push(res));
      call.once("error", reject);
      call.once("end", () => resolve(answers));
      for (const request of requests) call.write(create(method.input, request as MessageInitShape<typeof method.input>));
      call.end();
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

  it("buf curl lists Tessera's methods from the documented descriptors, and calls GetVersion", async () => {
    const methods = await run("node_modules/.bin/buf", ["curl", "--http2-prior-knowledge", "--list-methods", server.url]);
    assert.match(methods.stdout, /^tessera\.key\.v1\.KeyService\/GetJwks$/m);
    // And calls one, its schema from reflection (one stream: the services' files, then the types').
    const version = await run("node_modules/.bin/buf", ["curl", "--http2-prior-knowledge", "--protocol", "grpc", `${server.url}/tessera.jwt.v1.JwtService/GetVersion`, "-d", "{}"]);
    assert.match(JSON.parse(version.stdout).version, /^\d+\.\d+\.\d+/);
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

  it("a file already sent on the stream is not sent again, as grpc-go answers: the file asked for alone, or with the imports the stream has not had", async () => {
    const symbol = (value: string) => ({ messageRequest: { case: "fileContainingSymbol" as const, value } });
    const names = (res: ServerReflectionResponse) => files(res).map((f) => f.name);
    const jwtAndImports = [
      "tessera/jwt/v1/jwt.proto",
      "google/api/annotations.proto",
      "google/api/http.proto",
      "google/protobuf/descriptor.proto",
      "google/api/httpbody.proto",
      "google/protobuf/any.proto",
      "google/protobuf/struct.proto",
      "tessera/options/v1/options.proto",
    ];
    const first = await reflectOnOneStream(server.url, [
      { messageRequest: { case: "listServices", value: "" } },
      symbol("tessera.jwt.v1.JwtService"),
      symbol("tessera.jwt.v1.JwtService"),
      symbol("tessera.jwt.v1.JwtService.GetVersion"),
      { messageRequest: { case: "fileByFilename", value: "google/protobuf/struct.proto" } },
      // google.api.http, in google/api/annotations.proto.
      { messageRequest: { case: "fileContainingExtension", value: { containingType: "google.protobuf.MethodOptions", extensionNumber: 72295728 } } },
      symbol("no.such.Symbol"),
      symbol("google.rpc.ErrorInfo"),
    ]);
    assert.equal(first.length, 8);
    assert.equal(first[0]!.messageResponse.case, "listServicesResponse");
    assert.deepEqual(names(first[1]!), jwtAndImports);
    assert.deepEqual(names(first[2]!), ["tessera/jwt/v1/jwt.proto"]);
    assert.deepEqual(names(first[3]!), ["tessera/jwt/v1/jwt.proto"]);
    assert.deepEqual(names(first[4]!), ["google/protobuf/struct.proto"]);
    assert.deepEqual(names(first[5]!), ["google/api/annotations.proto"]);
    assert.equal(first[6]!.messageResponse.case, "errorResponse");
    assert.equal(first[6]!.messageResponse.value.errorCode, 5);
    assert.deepEqual(names(first[7]!), ["google/rpc/error_details.proto", "google/protobuf/duration.proto"]);
    // The file asked for again is the same descriptor, comments included.
    assert.ok(first[1]!.messageResponse.case === "fileDescriptorResponse" && first[2]!.messageResponse.case === "fileDescriptorResponse");
    assert.deepEqual(first[2]!.messageResponse.value.fileDescriptorProto[0], first[1]!.messageResponse.value.fileDescriptorProto[0]);

    // Another stream has sent nothing: the file and all its imports again, the same bytes; only
    // the imports that stream has not had when some were sent (KeyService's file imports
    // annotations, struct and options).
    const second = await reflectOnOneStream(server.url, [symbol("tessera.key.v1.KeyService"), symbol("tessera.jwt.v1.JwtService")]);
    assert.deepEqual(names(second[0]!), [
      "tessera/key/v1/key.proto",
      "google/api/annotations.proto",
      "google/api/http.proto",
      "google/protobuf/descriptor.proto",
      "google/protobuf/struct.proto",
      "tessera/options/v1/options.proto",
    ]);
    assert.deepEqual(names(second[1]!), ["tessera/jwt/v1/jwt.proto", "google/api/httpbody.proto", "google/protobuf/any.proto"]);
    const third = await reflectOnOneStream(server.url, [symbol("tessera.jwt.v1.JwtService")]);
    assert.deepEqual(third[0]!.messageResponse.value, first[1]!.messageResponse.value);

    // v1alpha alike.
    const alpha = await reflectOnOneStream(server.url, [symbol("tessera.jwt.v1.JwtService"), symbol("tessera.jwt.v1.JwtService")], ServerReflectionV1alpha);
    assert.deepEqual(names(alpha[0]!), jwtAndImports);
    assert.deepEqual(names(alpha[1]!), ["tessera/jwt/v1/jwt.proto"]);
  });
});
