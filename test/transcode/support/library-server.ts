import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { create, toJson, type DescMessage, type DescService, type JsonValue } from "@bufbuild/protobuf";
import { Code, ConnectError, createContextKey, type ConnectRouter, type HandlerContext, type Interceptor } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import type { UniversalHandler } from "@connectrpc/connect/protocol";
import {
  LibraryService,
  LooseService,
  PrecedenceService,
  type CreateItemRequest,
  type FailRequest,
  type GetFileRequest,
  type GetItemRequest,
  type UploadFileRequest,
} from "../../../gen/transcodetest/v1/library_pb.js";
import { createTranscoder, type Transcoder, type TranscoderOptions } from "../../../src/transcode/index.js";

/** What the test service received: the RPC, its request message as JSON, and the headers. */
export interface RecordedCall {
  rpc: string;
  input: JsonValue;
  header: Headers;
  /** Set by the router's interceptor: proves REST calls go through the same chain. */
  intercepted: boolean;
}

export interface LibraryServer {
  url: string;
  calls: RecordedCall[];
  transcoder: Transcoder;
  close(): Promise<void>;
}

// Connect code names, as the Fail RPC takes them.
const codeByName: Record<string, Code> = Object.fromEntries(
  Object.entries(Code)
    .filter(([, v]) => typeof v === "number")
    .map(([k, v]) => [k.replace(/[A-Z]/g, (c, i: number) => (i > 0 ? "_" : "") + c.toLowerCase()), v as Code]),
);

function record(calls: RecordedCall[], desc: DescMessage, rpc: string, input: unknown, ctx: HandlerContext): void {
  calls.push({
    rpc,
    input: toJson(desc, input as never),
    header: ctx.requestHeader,
    intercepted: ctx.values.get(interceptedKey),
  });
}

const interceptedKey = createContextKey(false);

/**
 * Answers per RPC: most return an empty output message; a few answer what the conformance
 * cases check (response_body, HttpBody, errors, headers, declared success statuses).
 */
function implement(service: DescService, calls: RecordedCall[]): Record<string, unknown> {
  const impl: Record<string, unknown> = {};
  for (const m of service.methods) {
    impl[m.localName] = async (input: unknown, ctx: HandlerContext) => {
      record(calls, m.input, m.name, input, ctx);
      return answer(m.name, input, ctx) ?? create(m.output);
    };
  }
  return impl;
}

function answer(rpc: string, input: unknown, ctx: HandlerContext): unknown {
  switch (rpc) {
    case "GetItem":
      return { id: (input as GetItemRequest).id };
    case "CreateItem": {
      const req = input as CreateItemRequest;
      ctx.responseHeader.set("x-served-by", "library");
      // A handler cannot choose the REST status through a header (the binding declares it).
      ctx.responseHeader.set("x-http-code", "299");
      return { ...req.item, id: "new" };
    }
    case "RegisterItem":
      return { id: "registered", displayName: (input as { displayName: string }).displayName };
    case "FindItem":
      return (input as { query: string }).query === "found" ? { item: { id: "f-1", displayName: "Found" } } : {};
    case "ListTags":
      return { tags: ["a", "b"], nextPageToken: "n" };
    case "GetFile": {
      const path = (input as GetFileRequest).path;
      // "untyped.md": the handler leaves content_type empty, so the declared type applies.
      const contentType = path === "untyped.md" ? "" : "text/plain; charset=utf-8";
      return { contentType, data: new TextEncoder().encode(`contents of ${path}`) };
    }
    case "UploadFile": {
      const req = input as UploadFileRequest;
      return { path: req.path, size: req.file?.data.length ?? -1 };
    }
    case "Login":
      return { contentType: "text/plain", data: new TextEncoder().encode("token-for-" + (input as { user: string }).user) };
    case "Fail": {
      const name = (input as FailRequest).code;
      if (name === "unauthenticated_basic") {
        throw new ConnectError("who are you", Code.Unauthenticated, { "www-authenticate": 'Basic realm="test"' });
      }
      const code = codeByName[name];
      if (code === undefined) return undefined;
      const metadata = code === Code.ResourceExhausted ? { "retry-after": "30" } : undefined;
      throw new ConnectError(`failed with ${name}`, code, metadata);
    }
  }
  return undefined;
}

/** The library's declared success statuses (Tessera reads its own from a method option). */
const declaredStatus: Record<string, { status?: number; unsetBodyStatus?: number; contentType?: string }> = {
  GetFile: { contentType: "text/markdown" },
  RegisterItem: { status: 201 },
  PurgeItem: { status: 204 },
  FindItem: { unsetBodyStatus: 204 },
};

export async function startLibraryServer(extra: Partial<TranscoderOptions> = {}): Promise<LibraryServer> {
  const calls: RecordedCall[] = [];
  const markIntercepted: Interceptor = (next) => (req) => {
    req.contextValues.set(interceptedKey, true);
    return next(req);
  };
  let handlers: UniversalHandler[] = [];
  let transcoder: Transcoder | undefined;
  const connect = connectNodeAdapter({
    interceptors: [markIntercepted],
    routes(router: ConnectRouter) {
      for (const s of [LibraryService, PrecedenceService, LooseService]) {
        router.service(s, implement(s, calls) as never);
      }
      handlers = router.handlers;
    },
    fallback: (req, res) => void transcoder!.handle(req, res as Parameters<Transcoder["handle"]>[1]),
  });
  transcoder = createTranscoder({
    services: [
      { service: LibraryService, successStatus: (m) => declaredStatus[m.name] },
      { service: PrecedenceService },
      { service: LooseService, basePath: "/loose", looseArguments: true },
    ],
    handlers,
    ...extra,
  });
  const server: Server = createServer(connect);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    calls,
    transcoder,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((e) => (e ? reject(e) : resolve()));
      }),
  };
}
