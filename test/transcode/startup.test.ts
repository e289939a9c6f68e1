import { strict as assert } from "node:assert";
import { createConnectRouter } from "@connectrpc/connect";
import { LibraryService, PrecedenceService } from "../../gen/transcodetest/v1/library_pb.js";
import { createTranscoder } from "../../src/transcode/index.js";

describe("transcoder start-up", () => {
  const router = createConnectRouter();
  router.service(LibraryService, {});
  router.service(PrecedenceService, {});

  it("lists every binding, additional bindings and base paths included", () => {
    const t = createTranscoder({
      services: [{ service: LibraryService, basePath: "/lib/" }, { service: PrecedenceService }],
      handlers: router.handlers,
    });
    assert.ok(t.routes.some((r) => r.method === "GET" && r.path === "/lib/v1/legacy/items/{id}" && r.rpc === "transcodetest.v1.LibraryService/GetItem"));
    assert.ok(t.routes.some((r) => r.method === "POST" && r.path === "/lib/v1/files/{path=**}:upload"));
    assert.ok(t.routes.some((r) => r.method === "GET" && r.path === "/v1/users/me"));
    assert.equal(t.routes.length, 22);
  });

  it("fails on a declared success status outside 2xx", () => {
    assert.throws(
      () =>
        createTranscoder({
          services: [{ service: LibraryService, successStatus: (m) => (m.name === "RegisterItem" ? { status: 302 } : undefined) }],
          handlers: router.handlers,
        }),
      /RegisterItem: success status 302 is not a 2xx status/,
    );
  });

  it("fails on an unset-body status for a binding without a response_body field", () => {
    assert.throws(
      () =>
        createTranscoder({
          services: [{ service: LibraryService, successStatus: (m) => (m.name === "GetItem" ? { unsetBodyStatus: 204 } : undefined) }],
          handlers: router.handlers,
        }),
      /GetItem: an unset-body status needs a response_body field/,
    );
  });

  it("fails on a declared content type for a binding that does not answer an HttpBody", () => {
    assert.throws(
      () =>
        createTranscoder({
          services: [{ service: LibraryService, successStatus: (m) => (m.name === "GetItem" ? { contentType: "text/plain" } : undefined) }],
          handlers: router.handlers,
        }),
      /GetItem: a declared content type \(text\/plain\) needs a google.api.HttpBody answer/,
    );
  });

  it("fails on duplicate routes", () => {
    assert.throws(
      () => createTranscoder({ services: [{ service: PrecedenceService }, { service: PrecedenceService }], handlers: router.handlers }),
      /duplicate route GET \/v1\/users\/me/,
    );
  });

  it("mounts the same service twice under different base paths", () => {
    const t = createTranscoder({
      services: [{ service: PrecedenceService, basePath: "/a" }, { service: PrecedenceService, basePath: "/b" }],
      handlers: router.handlers,
    });
    assert.equal(t.routes.length, 12);
  });

  it("fails on a bad base path", () => {
    assert.throws(
      () => createTranscoder({ services: [{ service: PrecedenceService, basePath: "api" }], handlers: router.handlers }),
      /invalid path template/,
    );
  });

  it("fails when the router has no handler for a bound method", () => {
    assert.throws(() => createTranscoder({ services: [{ service: LibraryService }], handlers: [] }), /no handler for transcodetest.v1.LibraryService\/GetBook/);
  });
});
