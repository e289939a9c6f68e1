// A number field given in JSON as a string that is no number's text ("0x10", "0b10000", "+16",
// "016"): protobuf-es read it with Number(), so the audit list's page_size "0x10" asked for 16
// events over Connect, gRPC and gRPC-Web in JSON, where REST refuses page_size=0x10 (400) and
// the proto3 JSON mapping takes a number or a string holding one. Refused on every protocol
// naming the field, in protobuf-es's own words for a string it cannot read as an int32 ("abc").
import { strict as assert } from "node:assert";
import http2 from "node:http2";
import { AuditService } from "../../gen/tessera/audit/v1/audit_pb.js";
import { bearer, rest } from "../support/clients.js";
import { decodedBody, grpcStatusDetails, tesseraDetails } from "../support/error-details.js";
import { testAdminToken, type TestServer } from "../support/server.js";
import { grpcFrame, grpcStatus, grpcWebTrailer, h2request, serverCheckedAfterEach } from "./support.js";

const listAuditEvents = `/${AuditService.typeName}/${AuditService.method.listAuditEvents.name}`;
const admin = bearer(testAdminToken);
const reason = "expected number (int32), got string";
const message = `cannot decode field tessera.audit.v1.ListAuditEventsRequest.page_size from JSON: ${reason}`;

describe("hostile: number fields given a string that is no number's text (JSON)", function () {
  this.timeout(30_000);
  const checked = serverCheckedAfterEach();
  let server: TestServer;
  beforeEach(() => {
    server = checked();
  });

  for (const text of ["0x10", "0b10000", "0o20", "+16", "016", ".5e2", "abc"]) {
    it(`Connect POST and GET: page_size ${JSON.stringify(text)} is 400 invalid_argument naming the field`, async () => {
      const json = JSON.stringify({ page_size: text });
      for (const res of [
        await fetch(server.url + listAuditEvents, { method: "POST", headers: { ...admin, "content-type": "application/json" }, body: json }),
        await fetch(`${server.url}${listAuditEvents}?connect=v1&encoding=json&message=${encodeURIComponent(json)}`, { headers: admin }),
      ]) {
        const body = await res.text();
        assert.equal(res.status, 400, body);
        assert.deepEqual(decodedBody(JSON.parse(body) as { code: string; message: string; details: unknown }), {
          code: "invalid_argument",
          message,
          details: tesseraDetails("MALFORMED_REQUEST", { page_size: reason }),
        });
      }
    });
  }

  it("gRPC+JSON and gRPC-Web+JSON: INVALID_ARGUMENT naming the field", async () => {
    const frame = grpcFrame(Buffer.from(JSON.stringify({ page_size: "0x10" })));
    const session = http2.connect(server.url);
    try {
      const a = await h2request(session, { ":method": "POST", ":path": listAuditEvents, "content-type": "application/grpc+json", te: "trailers", ...admin }, frame);
      assert.equal(grpcStatus(a), 3);
      assert.equal(decodeURIComponent(String(a.trailers["grpc-message"] ?? a.headers["grpc-message"])), message);
      const details = grpcStatusDetails(String(a.trailers["grpc-status-details-bin"] ?? a.headers["grpc-status-details-bin"]));
      assert.deepEqual(details, { code: 3, message, ...tesseraDetails("MALFORMED_REQUEST", { page_size: reason }) });
    } finally {
      session.close();
    }
    const res = await fetch(server.url + listAuditEvents, { method: "POST", headers: { ...admin, "content-type": "application/grpc-web+json" }, body: frame });
    const trailer = grpcWebTrailer(Buffer.from(await res.arrayBuffer()));
    assert.equal(trailer["grpc-status"] ?? res.headers.get("grpc-status"), "3");
    assert.equal(decodeURIComponent(trailer["grpc-message"] ?? res.headers.get("grpc-message") ?? ""), message);
  });

  it("a number, or a string holding a number's text, is taken as before (Connect 200)", async () => {
    for (const value of [16, "16", "1.6e1", "16.0", "-0", 0]) {
      const res = await fetch(server.url + listAuditEvents, { method: "POST", headers: { ...admin, "content-type": "application/json" }, body: JSON.stringify({ page_size: value }) });
      assert.equal(res.status, 200, `${JSON.stringify(value)}: ${await res.text()}`);
    }
  });

  it("REST refuses page_size=0x10 as it did (400 INVALID_QUERY_PARAMETER)", async () => {
    const res = await rest(server.url, "GET", "/v1/admin/audit-events?page_size=0x10", { headers: admin });
    assert.equal(res.status, 400, res.text);
    assert.deepEqual(decodedBody(res.body), {
      code: "invalid_argument",
      message: 'invalid query parameter "page_size": not a valid int32',
      details: tesseraDetails("INVALID_QUERY_PARAMETER", { page_size: 'invalid query parameter "page_size": not a valid int32' }),
    });
  });
});
