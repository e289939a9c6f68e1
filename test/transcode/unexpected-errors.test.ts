// A failure the transcoder does not expect (here: a handler answer whose bytes do not parse as
// the output message) is a 500 with a generic body, and is reported through `onError` with the
// route — the caller sees nothing of it, the operator sees all of it. The route is the matched
// template, not the request's path: a path variable may be a secret (seed 003's
// /api/authenticationtoken/{token}/user), and the report goes to the log.
import { strict as assert } from "node:assert";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { createConnectRouter } from "@connectrpc/connect";
import type { UniversalHandler } from "@connectrpc/connect/protocol";
import { LibraryService } from "../../gen/transcodetest/v1/library_pb.js";
import { createTranscoder } from "../../src/transcode/index.js";

describe("transcoder: unexpected failures", () => {
  it("answer 500 {code: internal} and are reported once through onError with the route's template, not the path's values", async () => {
    const router = createConnectRouter();
    router.service(LibraryService, {});
    // GetItem answers 200 with bytes that are no Item: field 1 announcing 127 bytes.
    const handlers: UniversalHandler[] = router.handlers.map((h) =>
      h.requestPath.endsWith("/GetItem")
        ? Object.assign(async () => ({ status: 200, header: new Headers(), body: (async function* () { yield new Uint8Array([0x0a, 0x7f]); })() }), h)
        : h,
    );
    const reports: Array<{ error: unknown; route: string }> = [];
    const transcoder = createTranscoder({ services: [{ service: LibraryService }], handlers, onError: (error, route) => reports.push({ error, route }) });
    const server = createServer((req, res) => void transcoder.handle(req, res));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
    try {
      const res = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/items/secret-42`);
      const text = await res.clone().text();
      assert.equal(res.status, 500, text);
      assert.deepEqual(await res.json(), { code: "internal", message: "internal error", details: [] });
      assert.equal(reports.length, 1);
      assert.equal(reports[0]!.route, "GET /v1/items/{id}");
      assert.ok(reports[0]!.error instanceof Error);
    } finally {
      server.close();
    }
  });
});
