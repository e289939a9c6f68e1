// Times a client writes that name no real time: a day its month does not have (2030-02-30,
// 2030-04-31, 2100-02-29) or 24:00:00; and RFC 3339 date-times a Timestamp cannot take (a leap
// second, more than 9 fraction digits, "t" and "z" in lower case), refused saying why. protobuf-es reads a google.protobuf.Timestamp's JSON
// form with Date.parse, which carries them over (2030-02-30 became 2030-03-02), so a login's
// expirationTime or an audit query's since/until silently meant another time. Every place a
// client's Timestamp arrives as text refuses them as it refuses a time that does not parse,
// naming the field: REST (JSON body, query), Connect (POST and GET), gRPC and gRPC-Web in JSON.
// The seed documents (002: expirationTime) give no error body for a bad time; Tessera's own
// (user_token.proto) says INVALID_ARGUMENT naming the problem. In binary a Timestamp outside
// google.protobuf.Timestamp's range (nanos, seconds) is refused the same way.
import { strict as assert } from "node:assert";
import http2 from "node:http2";
import { create, toBinary, type JsonValue } from "@bufbuild/protobuf";
import { TimestampSchema, type Timestamp } from "@bufbuild/protobuf/wkt";
import type { Client } from "@connectrpc/connect";
import { ListAuditEventsRequestSchema } from "../../gen/tessera/audit/v1/audit_pb.js";
import { AuditService } from "../../gen/tessera/audit/v1/audit_pb.js";
import { UserTokenService } from "../../gen/tessera/usertoken/v1/user_token_pb.js";
import { basic, bearer, connectClient, connectError, connectGrpcClient, GrpcJsClient, grpcWebClient, rest } from "../support/clients.js";
import { connectDetails, decodedBody, grpcStatusDetails, tesseraDetails } from "../support/error-details.js";
import { testAdminToken, type TestServer } from "../support/server.js";
import { password, signUp } from "../support/users.js";
import { grpcFrame, grpcStatus, grpcWebTrailer, h2request, serverCheckedAfterEach } from "./support.js";

const login = `/${UserTokenService.typeName}/${UserTokenService.method.login.name}`;
const listAuditEvents = `/${AuditService.typeName}/${AuditService.method.listAuditEvents.name}`;
const admin = bearer(testAdminToken);
/** Credentials that would be refused (401) if the request got as far as the login. */
const stranger = basic("nobody@example.com", "not the password");

const impossible: ReadonlyArray<[string, string]> = [
  ["2030-02-30T00:00:00Z", "invalid RFC 3339 string: 2030-02-30 is no date (February 2030 has 28 days)"],
  ["2030-02-29T12:00:00+01:00", "invalid RFC 3339 string: 2030-02-29 is no date (February 2030 has 28 days)"],
  ["2100-02-29T00:00:00Z", "invalid RFC 3339 string: 2100-02-29 is no date (February 2100 has 28 days)"],
  ["2030-04-31T08:30:00.250Z", "invalid RFC 3339 string: 2030-04-31 is no date (April 2030 has 30 days)"],
  ["2030-01-01T24:00:00Z", "invalid RFC 3339 string: 24:00:00 is no time of day (00:00:00 to 23:59:59)"],
  // RFC 3339 date-times google.protobuf.Timestamp's JSON form does not take: said why, not
  // called no RFC 3339 string.
  ["2030-12-31T23:59:60Z", "invalid RFC 3339 string: a leap second (:60) is not supported: google.protobuf.Timestamp has none"],
  ["2030-01-01T00:00:00.1234567891Z", "invalid RFC 3339 string: at most 9 fraction digits (nanoseconds) are supported"],
  ["2030-01-01t00:00:00z", 'invalid RFC 3339 string: "T" and "Z" are taken in upper case only'],
];

describe("hostile: impossible dates in Timestamp fields", function () {
  this.timeout(30_000);
  const checked = serverCheckedAfterEach();
  let server: TestServer;
  beforeEach(() => {
    server = checked();
  });

  describe("POST /auth/login expirationTime (seed 002)", () => {
    for (const [time, reason] of impossible) {
      it(`REST: ${time} is 400 INVALID_BODY_FIELD naming expirationTime`, async () => {
        const res = await rest(server.url, "POST", "/auth/login", { headers: stranger, json: { expirationTime: time } });
        assert.equal(res.status, 400, res.text);
        const message = `invalid request body: field "expirationTime": cannot decode message google.protobuf.Timestamp from JSON: ${reason}`;
        assert.deepEqual(decodedBody(res.body), { code: "invalid_argument", message, details: tesseraDetails("INVALID_BODY_FIELD", { expiration_time: message }) });
      });

      it(`Connect: ${time} is 400 invalid_argument naming the field`, async () => {
        const res = await fetch(server.url + login, { method: "POST", headers: { ...stranger, "content-type": "application/json" }, body: JSON.stringify({ expirationTime: time }) });
        const text = await res.text();
        assert.equal(res.status, 400, text);
        assert.deepEqual(decodedBody(JSON.parse(text) as { code: string; message: string; details: unknown }), {
          code: "invalid_argument",
          message: `cannot decode field tessera.usertoken.v1.LoginRequest.expiration_time from JSON: ${reason}`,
          details: tesseraDetails("MALFORMED_REQUEST", { expiration_time: reason }),
        });
      });
    }

    it("REST: the proto name (expiration_time) is checked as well", async () => {
      const res = await rest(server.url, "POST", "/auth/login", { headers: stranger, json: { expiration_time: "2030-02-30T00:00:00Z" } });
      assert.equal(res.status, 400, res.text);
      assert.equal(res.body.message, `invalid request body: field "expiration_time": cannot decode message google.protobuf.Timestamp from JSON: ${impossible[0]![1]}`);
    });

    it("Connect, compressed (connect-es's own path): 400 naming the field", async () => {
      const { gzipSync } = await import("node:zlib");
      const res = await fetch(server.url + login, {
        method: "POST",
        headers: { ...stranger, "content-type": "application/json", "content-encoding": "gzip" },
        body: gzipSync(JSON.stringify({ expirationTime: "2030-02-30T00:00:00Z" })),
      });
      const text = await res.text();
      assert.equal(res.status, 400, text);
      assert.equal((JSON.parse(text) as { message: string }).message, `cannot decode field tessera.usertoken.v1.LoginRequest.expiration_time from JSON: ${impossible[0]![1]}`);
    });

    it("gRPC+JSON: INVALID_ARGUMENT naming the field", async () => {
      const session = http2.connect(server.url);
      try {
        const a = await h2request(
          session,
          { ":method": "POST", ":path": login, "content-type": "application/grpc+json", te: "trailers", ...stranger },
          grpcFrame(Buffer.from(JSON.stringify({ expirationTime: "2030-02-30T00:00:00Z" }))),
        );
        assert.equal(grpcStatus(a), 3);
        const message = `cannot decode field tessera.usertoken.v1.LoginRequest.expiration_time from JSON: ${impossible[0]![1]}`;
        assert.equal(decodeURIComponent(String(a.trailers["grpc-message"] ?? a.headers["grpc-message"])), message);
        const details = grpcStatusDetails(String(a.trailers["grpc-status-details-bin"] ?? a.headers["grpc-status-details-bin"]));
        assert.deepEqual(details, { code: 3, message, ...tesseraDetails("MALFORMED_REQUEST", { expiration_time: impossible[0]![1] }) });
      } finally {
        session.close();
      }
    });

    it("gRPC-Web+JSON: INVALID_ARGUMENT naming the field", async () => {
      const res = await fetch(server.url + login, {
        method: "POST",
        headers: { ...stranger, "content-type": "application/grpc-web+json" },
        body: grpcFrame(Buffer.from(JSON.stringify({ expirationTime: "2030-01-01T24:00:00Z" }))),
      });
      const trailer = grpcWebTrailer(Buffer.from(await res.arrayBuffer()));
      assert.equal(trailer["grpc-status"] ?? res.headers.get("grpc-status"), "3");
      assert.equal(decodeURIComponent(trailer["grpc-message"] ?? res.headers.get("grpc-message") ?? ""), `cannot decode field tessera.usertoken.v1.LoginRequest.expiration_time from JSON: ${impossible[4]![1]}`);
    });

    it("real times are taken as written: 29 February of a leap year (2028, 2400), 23:59:59.999, any offset", async () => {
      const user = await signUp(server);
      for (const time of ["2028-02-29T00:00:00Z", "2400-02-29T23:59:59.999Z", "2030-03-01T00:30:00+01:00"]) {
        const viaRest = await rest(server.url, "POST", "/auth/login", { headers: basic(user.login, password), json: { expirationTime: time } });
        assert.equal(viaRest.status, 200, viaRest.text);
        assert.equal(Date.parse(viaRest.body.expirationTime), Date.parse(time));
        const viaConnect = await fetch(server.url + login, { method: "POST", headers: { ...basic(user.login, password), "content-type": "application/json" }, body: JSON.stringify({ expirationTime: time }) });
        const body = (await viaConnect.json()) as { expirationTime: string };
        assert.equal(viaConnect.status, 200, JSON.stringify(body));
        assert.equal(Date.parse(body.expirationTime), Date.parse(time));
      }
    });
  });

  describe("GET /v1/admin/audit-events since and until", () => {
    for (const field of ["since", "until"]) {
      for (const [time] of impossible) {
        it(`REST: ${field}=${time} is 400 INVALID_QUERY_PARAMETER, as a time that does not parse`, async () => {
          const res = await rest(server.url, "GET", `/v1/admin/audit-events?${field}=${encodeURIComponent(time)}`, { headers: admin });
          assert.equal(res.status, 400, res.text);
          const message = `invalid query parameter "${field}": not a valid google.protobuf.Timestamp in its JSON form`;
          assert.deepEqual(decodedBody(res.body), { code: "invalid_argument", message, details: tesseraDetails("INVALID_QUERY_PARAMETER", { [field]: message }) });
        });
      }
    }

    for (const [method, field] of [["GET", "since"], ["POST", "until"]] as const) {
      it(`Connect ${method}: ${field} 2030-02-30 is 400 invalid_argument naming the field`, async () => {
        const json = JSON.stringify({ [field]: "2030-02-30T00:00:00Z" });
        const res =
          method === "GET"
            ? await fetch(`${server.url}${listAuditEvents}?connect=v1&encoding=json&message=${encodeURIComponent(json)}`, { headers: admin })
            : await fetch(server.url + listAuditEvents, { method: "POST", headers: { ...admin, "content-type": "application/json" }, body: json });
        const text = await res.text();
        assert.equal(res.status, 400, text);
        assert.deepEqual(decodedBody(JSON.parse(text) as { code: string; message: string; details: unknown }), {
          code: "invalid_argument",
          message: `cannot decode field tessera.audit.v1.ListAuditEventsRequest.${field} from JSON: ${impossible[0]![1]}`,
          details: tesseraDetails("MALFORMED_REQUEST", { [field]: impossible[0]![1] }),
        });
      });
    }

    it("real times are taken: REST and Connect answer 200", async () => {
      const res = await rest(server.url, "GET", "/v1/admin/audit-events?since=2028-02-29T00:00:00Z&until=2030-12-31T23:59:59Z", { headers: admin });
      assert.equal(res.status, 200, res.text);
      const viaConnect = await fetch(server.url + listAuditEvents, { method: "POST", headers: { ...admin, "content-type": "application/json" }, body: JSON.stringify({ since: "2028-02-29T00:00:00Z" }) });
      assert.equal(viaConnect.status, 200, await viaConnect.text());
    });
  });
  // protobuf-es refused these itself, in words that name the Timestamp type but not the field
  // ("cannot decode message google.protobuf.Timestamp from JSON: invalid RFC 3339 string").
  describe("a JSON time that does not parse at all, over Connect, gRPC and gRPC-Web", () => {
    const unreadable: ReadonlyArray<[JsonValue, string]> = [
      ["garbage", "invalid RFC 3339 string"],
      ["2030-02-03", "invalid RFC 3339 string"],
      ["10000-01-01T00:00:00Z", "invalid RFC 3339 string"],
      ["0000-12-31T00:00:00Z", "must be from 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z inclusive"],
      [1893456000, "expected an RFC 3339 string, got number"],
      [{ seconds: 1 }, "expected an RFC 3339 string, got object"],
    ];
    const loginMessage = (reason: string) => `cannot decode field tessera.usertoken.v1.LoginRequest.expiration_time from JSON: ${reason}`;

    for (const [value, reason] of unreadable) {
      it(`Connect: expirationTime ${JSON.stringify(value)} is 400 invalid_argument naming the field`, async () => {
        const res = await fetch(server.url + login, { method: "POST", headers: { ...stranger, "content-type": "application/json" }, body: JSON.stringify({ expirationTime: value }) });
        const text = await res.text();
        assert.equal(res.status, 400, text);
        assert.deepEqual(decodedBody(JSON.parse(text) as { code: string; message: string; details: unknown }), {
          code: "invalid_argument",
          message: loginMessage(reason),
          details: tesseraDetails("MALFORMED_REQUEST", { expiration_time: reason }),
        });
      });
    }

    it("Connect GET: the audit query's until that does not parse names the field", async () => {
      const json = JSON.stringify({ until: "yesterday" });
      const res = await fetch(`${server.url}${listAuditEvents}?connect=v1&encoding=json&message=${encodeURIComponent(json)}`, { headers: admin });
      const text = await res.text();
      assert.equal(res.status, 400, text);
      assert.equal((JSON.parse(text) as { message: string }).message, "cannot decode field tessera.audit.v1.ListAuditEventsRequest.until from JSON: invalid RFC 3339 string");
    });

    it("gRPC+JSON and gRPC-Web+JSON: INVALID_ARGUMENT naming the field", async () => {
      const frame = grpcFrame(Buffer.from(JSON.stringify({ expirationTime: "garbage" })));
      const session = http2.connect(server.url);
      try {
        const a = await h2request(session, { ":method": "POST", ":path": login, "content-type": "application/grpc+json", te: "trailers", ...stranger }, frame);
        assert.equal(grpcStatus(a), 3);
        assert.equal(decodeURIComponent(String(a.trailers["grpc-message"] ?? a.headers["grpc-message"])), loginMessage("invalid RFC 3339 string"));
      } finally {
        session.close();
      }
      const res = await fetch(server.url + login, { method: "POST", headers: { ...stranger, "content-type": "application/grpc-web+json" }, body: frame });
      const trailer = grpcWebTrailer(Buffer.from(await res.arrayBuffer()));
      assert.equal(trailer["grpc-status"] ?? res.headers.get("grpc-status"), "3");
      assert.equal(decodeURIComponent(trailer["grpc-message"] ?? res.headers.get("grpc-message") ?? ""), loginMessage("invalid RFC 3339 string"));
    });

    it("null leaves the field unset, as before (the login goes on to its credential check)", async () => {
      const res = await fetch(server.url + login, { method: "POST", headers: { ...stranger, "content-type": "application/json" }, body: JSON.stringify({ expirationTime: null }) });
      assert.equal(res.status, 401, await res.text());
    });
  });

  // A binary Timestamp is two numbers protobuf-es takes as they come: nanos of -1 or 1e9 were
  // carried into the seconds (a time other than the one sent), seconds past 9999 or before the
  // year 1 were taken by the audit query (and by login until its credential check had passed).
  describe("binary (protobuf) Timestamps out of range", () => {
    const future = BigInt(Math.floor(Date.now() / 1000) + 86_400);
    const outOfRange: ReadonlyArray<[string, Timestamp, string]> = [
      ["nanos -1", create(TimestampSchema, { seconds: future, nanos: -1 }), "google.protobuf.Timestamp nanos must be from 0 to 999999999 inclusive, not -1"],
      ["nanos 1e9", create(TimestampSchema, { seconds: future, nanos: 1_000_000_000 }), "google.protobuf.Timestamp nanos must be from 0 to 999999999 inclusive, not 1000000000"],
      [
        "10000-01-01",
        create(TimestampSchema, { seconds: 253402300800n }),
        "google.protobuf.Timestamp seconds must be from -62135596800 (0001-01-01T00:00:00Z) to 253402300799 (9999-12-31T23:59:59Z) inclusive, not 253402300800",
      ],
      [
        "0000-12-31T23:59:59",
        create(TimestampSchema, { seconds: -62135596801n }),
        "google.protobuf.Timestamp seconds must be from -62135596800 (0001-01-01T00:00:00Z) to 253402300799 (9999-12-31T23:59:59Z) inclusive, not -62135596801",
      ],
    ];
    const clients: ReadonlyArray<[string, <S extends Parameters<typeof connectClient>[0]>(service: S) => Client<S>]> = [
      ["Connect (binary)", (service) => connectClient(service, server.url, { binary: true })],
      ["gRPC (connect-node)", (service) => connectGrpcClient(service, server.url)],
      ["gRPC-Web (binary)", (service) => grpcWebClient(service, server.url)],
    ];

    for (const [protocol, client] of clients) {
      for (const [name, time, reason] of outOfRange) {
        it(`${protocol}: login's expirationTime ${name} is INVALID_ARGUMENT naming the field (before the credential check)`, async () => {
          const e = await connectError(client(UserTokenService).login({ expirationTime: time }, { headers: stranger }));
          assert.equal(e.code, 3, e.rawMessage);
          assert.equal(e.rawMessage, `cannot decode field tessera.usertoken.v1.LoginRequest.expiration_time from binary: ${reason}`);
          assert.deepEqual(connectDetails(e), tesseraDetails("MALFORMED_REQUEST", { expiration_time: reason }));
        });
      }

      for (const field of ["since", "until"] as const) {
        it(`${protocol}: the audit query's ${field} out of range is INVALID_ARGUMENT naming it`, async () => {
          const [, time, reason] = outOfRange[2]!;
          const e = await connectError(client(AuditService).listAuditEvents({ [field]: time }, { headers: admin }));
          assert.equal(e.code, 3, e.rawMessage);
          assert.equal(e.rawMessage, `cannot decode field tessera.audit.v1.ListAuditEventsRequest.${field} from binary: ${reason}`);
          assert.deepEqual(connectDetails(e), tesseraDetails("MALFORMED_REQUEST", { [field]: reason }));
        });
      }
    }

    it("gRPC (@grpc/grpc-js): INVALID_ARGUMENT naming the field, in grpc-status-details-bin too", async () => {
      const client = new GrpcJsClient(UserTokenService, server.url);
      try {
        const [, time, reason] = outOfRange[0]!;
        const r = await client.call("Login", { expirationTime: time }, stranger);
        assert.equal(r.error?.code, 3);
        const message = `cannot decode field tessera.usertoken.v1.LoginRequest.expiration_time from binary: ${reason}`;
        assert.equal(r.error?.details, message);
        const bin = r.trailer?.get("grpc-status-details-bin")[0] as Uint8Array;
        assert.deepEqual(grpcStatusDetails(bin), { code: 3, message, ...tesseraDetails("MALFORMED_REQUEST", { expiration_time: reason }) });
      } finally {
        client.close();
      }
    });

    it("Connect GET (encoding=proto): the audit query's since out of range is 400 naming it", async () => {
      const [, time, reason] = outOfRange[1]!;
      const message = Buffer.from(toBinary(ListAuditEventsRequestSchema, create(ListAuditEventsRequestSchema, { since: time }))).toString("base64url");
      const res = await fetch(`${server.url}${listAuditEvents}?connect=v1&encoding=proto&base64=1&message=${message}`, { headers: admin });
      const text = await res.text();
      assert.equal(res.status, 400, text);
      assert.deepEqual(decodedBody(JSON.parse(text) as { code: string; message: string; details: unknown }), {
        code: "invalid_argument",
        message: `cannot decode field tessera.audit.v1.ListAuditEventsRequest.since from binary: ${reason}`,
        details: tesseraDetails("MALFORMED_REQUEST", { since: reason }),
      });
    });

    it("the edges of the range are taken (0001-01-01T00:00:00Z, 9999-12-31T23:59:59.999999999Z), and a login's time as sent", async () => {
      const audit = connectClient(AuditService, server.url, { binary: true });
      const first = create(TimestampSchema, { seconds: -62135596800n, nanos: 0 });
      const last = create(TimestampSchema, { seconds: 253402300799n, nanos: 999_999_999 });
      const page = await audit.listAuditEvents({ since: first, until: last }, { headers: admin });
      assert.ok(Array.isArray(page.events));
      const user = await signUp(server);
      // Stored to the millisecond (nanos 999999999 would round up into the next second).
      const token = await connectGrpcClient(UserTokenService, server.url).login({ expirationTime: create(TimestampSchema, { seconds: future, nanos: 999_000_000 }) }, { headers: basic(user.login, password) });
      assert.equal(token.expirationTime?.seconds, future);
      assert.equal(token.expirationTime?.nanos, 999_000_000);
    });
  });
});
