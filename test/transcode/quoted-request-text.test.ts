// What a REST error quotes of the request (a part's Content-Transfer-Encoding, a form field's
// name, the Content-Type) is quoted as a Connect or gRPC error quotes a header's value: its
// first 64 characters, JSON-escaped, its length then said, and `*` for one holding a credential
// or a secret of the configuration; a URL's password is hidden. The answer never grows with the
// request: 64 KiB of NULs in a Content-Transfer-Encoding were quoted whole, a 1.4 MB answer.
import assert from "node:assert/strict";
import { rest, type RestResponse } from "../support/clients.js";
import { decodedBody, tesseraDetails } from "../support/error-details.js";
import { RestH2c } from "../support/rest-h2c.js";
import { startTestServer, testAdminToken, type TestServer } from "../support/server.js";

/** 64 KiB of NULs, the body limit raised to take them with the part around them. */
const nuls = "\u0000".repeat(64 * 1024);
const multipart = (transferEncoding: string) =>
  `--x\r\nContent-Disposition: form-data; name="user"\r\nContent-Transfer-Encoding: ${transferEncoding}\r\n\r\nada\r\n--x--\r\n`;
const longName = "f".repeat(60_000);
const longType = `text/${"a".repeat(2000)}`;

type Send = (path: string, opts: { headers: Record<string, string>; body?: string }, method?: string) => Promise<RestResponse>;

/** The whole answer: status, the JSON error's fields (nothing else), its details decoded. */
function assertError(res: RestResponse, status: number, code: string, message: string, details: ReturnType<typeof tesseraDetails>): void {
  assert.equal(res.status, status, res.text);
  assert.deepEqual(Object.keys(res.body as object), ["code", "message", "details"]);
  assert.deepEqual(decodedBody(res.body), { code, message, details });
}

describe("REST errors quote the request's text bounded, escaped, credentials hidden", () => {
  let server: TestServer;
  let h2c: RestH2c;
  before(async () => {
    server = await startTestServer({ env: { TESSERA_BODY_LIMIT_BYTES: String(128 * 1024), TESSERA_CORS_ORIGINS: "https://app.example" } });
    h2c = new RestH2c(server.url);
  });
  after(async () => {
    h2c.close();
    await server.close();
  });

  const transports: Array<[string, () => Send]> = [
    ["HTTP/1.1", () => (path, opts, method = "POST") => rest(server.url, method, path, opts)],
    ["h2c", () => (path, opts, method = "POST") => h2c.request(method, path, opts)],
  ];
  for (const [transport, sender] of transports) {
    describe(`over ${transport}`, () => {
      it("a part's Content-Transfer-Encoding of 64 KiB of NULs: 415 quoting its first 64, escaped, and its length", async () => {
        const res = await sender()("/jwt/user", { headers: { "content-type": "multipart/form-data; boundary=x" }, body: multipart(nuls) });
        const message = `form field "user" is in the Content-Transfer-Encoding "${"\\u0000".repeat(64)}"... (65536 characters): a field is read as sent (RFC 7578 4.7)`;
        assertError(res, 415, "invalid_argument", message, tesseraDetails("UNSUPPORTED_MEDIA_TYPE", { user: message }));
      });

      it("an unknown form field of 60 000 characters: 400 quoting its first 64 and its length, no field violation naming it", async () => {
        const res = await sender()("/jwt/user", { headers: { "content-type": "application/x-www-form-urlencoded" }, body: `${longName}=1` });
        assertError(res, 400, "invalid_argument", `unknown form field "${"f".repeat(64)}"... (60000 characters)`, tesseraDetails("UNKNOWN_QUERY_PARAMETER"));
      });

      it("a Content-Type of 2005 characters: 415 quoting its first 64 and its length", async () => {
        const res = await sender()("/jwt/user", { headers: { "content-type": longType }, body: "x" });
        assertError(res, 415, "invalid_argument", `unsupported content type "text/${"a".repeat(59)}"... (2005 characters)`, tesseraDetails("UNSUPPORTED_MEDIA_TYPE"));
      });

      it("a Content-Type holding the admin token as a parameter: 415 writing it *", async () => {
        const res = await sender()("/jwt/user", { headers: { "content-type": `text/plain; token=${testAdminToken}` }, body: "x" });
        assertError(res, 415, "invalid_argument", "unsupported content type *", tesseraDetails("UNSUPPORTED_MEDIA_TYPE"));
        assert.ok(!res.text.includes(testAdminToken), res.text);
      });

      it("a Content-Type that is a URL with a password: 415 quoting it with the password hidden", async () => {
        const res = await sender()("/jwt/user", { headers: { "content-type": "https://ada:hunter2-secret@example.com/x" }, body: "x" });
        assertError(res, 415, "invalid_argument", 'unsupported content type "https://ada:<hidden>@example.com/x"', tesseraDetails("UNSUPPORTED_MEDIA_TYPE"));
      });

      it("a Content-Type with a URL's password in a parameter: 415 quoting it with the password hidden", async () => {
        const res = await sender()("/jwt/user", { headers: { "content-type": "text/plain; x=https://ada:hunter2-secret@example.com/" }, body: "x" });
        assertError(res, 415, "invalid_argument", 'unsupported content type "text/plain; x=https://ada:<hidden>@example.com/"', tesseraDetails("UNSUPPORTED_MEDIA_TYPE"));
      });

      const preflight = (origin: string) => sender()("/jwt/user", { headers: { origin, "access-control-request-method": "POST" } }, "OPTIONS");
      it("a CORS preflight from an Origin of 2000 characters: 403 quoting its first 64 and its length", async () => {
        const origin = `https://${"a".repeat(1984)}.example`;
        const res = await preflight(origin);
        assertError(res, 403, "permission_denied", `origin "https://${"a".repeat(56)}"... (2000 characters) is not allowed`, tesseraDetails("ORIGIN_NOT_ALLOWED"));
      });

      it("a CORS preflight from an Origin holding the admin token or a URL's password: 403, the token written *, the password hidden", async () => {
        const token = await preflight(`https://evil.example ${testAdminToken}`);
        assertError(token, 403, "permission_denied", "origin * is not allowed", tesseraDetails("ORIGIN_NOT_ALLOWED"));
        const password = await preflight("https://ada:hunter2-secret@evil.example");
        assertError(password, 403, "permission_denied", 'origin "https://ada:<hidden>@evil.example" is not allowed', tesseraDetails("ORIGIN_NOT_ALLOWED"));
      });

      it("a path whose first unknown segment has 2000 characters: 404 quoting its first 64 and its length", async () => {
        const res = await sender()(`/${"n".repeat(2000)}/x`, { headers: {} }, "GET");
        assertError(res, 404, "not_found", `no route for GET /"${"n".repeat(64)}"... (2000 characters)/*`, tesseraDetails("ROUTE_NOT_FOUND"));
        const deeper = await sender()(`/jwt/${"n".repeat(2000)}`, { headers: {} }, "GET");
        assertError(deeper, 404, "not_found", `no route for GET /jwt/"${"n".repeat(64)}"... (2000 characters)`, tesseraDetails("ROUTE_NOT_FOUND"));
      });

      it("a short unknown path and a refused short Origin are shown as before, unquoted", async () => {
        const path = await sender()("/nope/x", { headers: {} }, "GET");
        assertError(path, 404, "not_found", "no route for GET /nope/*", tesseraDetails("ROUTE_NOT_FOUND"));
        const origin = await preflight("https://evil.example");
        assertError(origin, 403, "permission_denied", "origin https://evil.example is not allowed", tesseraDetails("ORIGIN_NOT_ALLOWED"));
      });

      it("a short unknown form field and Content-Type are quoted as before, the field named", async () => {
        const field = await sender()("/jwt/user", { headers: { "content-type": "application/x-www-form-urlencoded" }, body: "role=admin" });
        assertError(field, 400, "invalid_argument", 'unknown form field "role"', tesseraDetails("UNKNOWN_QUERY_PARAMETER", { role: 'unknown form field "role"' }));
        const type = await sender()("/jwt/user", { headers: { "content-type": "text/plain" }, body: "x" });
        assertError(type, 415, "invalid_argument", 'unsupported content type "text/plain"', tesseraDetails("UNSUPPORTED_MEDIA_TYPE"));
      });
    });
  }
});
