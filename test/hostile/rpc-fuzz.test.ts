/**
 * Property-based hostile input on EVERY RPC of Tessera's services, over Connect (JSON unary
 * bodies: the same hostile bodies as the REST suite) and over gRPC (raw HTTP/2 frames carrying
 * random bytes, protobuf with hostile strings, invalid UTF-8 in string fields, wrong wire types),
 * with no credential, a garbage one, or each valid credential. Every error is a clean Connect/gRPC
 * code, never INTERNAL or UNKNOWN, never a hung stream; the server still answers /healthz; and a
 * refused call leaves the store exactly as it was.
 *
 * Replay a failure with HOSTILE_SEED=<printed seed>; scale with HOSTILE_RUNS=<n>.
 */
import { strict as assert } from "node:assert";
import http2 from "node:http2";
import { create, toBinary, ScalarType, type DescMessage } from "@bufbuild/protobuf";
import fc from "fast-check";
import { startTestServer, storesUnderTest, type TestServer } from "../support/server.js";
import { hostileBody, hostileString } from "./arbitraries.js";
import {
  assertProperty,
  credentialHeaders,
  diff,
  grpcFrame,
  grpcStatus,
  h2request,
  healthy,
  makeCredentials,
  raw,
  rpcs,
  storeReader,
  type Credentials,
  type Snapshot,
  type StoreReader,
} from "./support.js";

const runsPerRpc = 20;
const INTERNAL = 13;
const UNKNOWN = 2;

function varint(n: number): Buffer {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  out.push(n);
  return Buffer.from(out);
}

interface Payload {
  kind: string;
  bytes: Uint8Array;
  mustReject: boolean;
}

/** Protobuf payloads for a request message. */
function hostilePayload(desc: DescMessage): fc.Arbitrary<Payload> {
  const strings = desc.fields.filter((f) => f.fieldKind === "scalar" && f.scalar === ScalarType.STRING);
  const garbage = fc.uint8Array({ maxLength: 200 }).map((bytes) => ({ kind: "random-bytes", bytes, mustReject: false }));
  const truncated = fc.constant({ kind: "truncated-varint", bytes: Uint8Array.from([0x08, 0xff, 0xff]), mustReject: true });
  const badLength = fc.constant({ kind: "length-past-end", bytes: Uint8Array.from([0x0a, 0x7f, 0x61]), mustReject: true });
  const groupEnd = fc.constant({ kind: "stray-end-group", bytes: Uint8Array.from([0x0c]), mustReject: true });
  const fieldZero = fc.constant({ kind: "field-number-0", bytes: Uint8Array.from([0x02, 0x01, 0x61]), mustReject: true });
  if (strings.length === 0) return fc.oneof(garbage, truncated, badLength, groupEnd, fieldZero);
  const hostileStrings = fc
    .record(Object.fromEntries(strings.map((f) => [f.localName, hostileString])), { requiredKeys: [] })
    .map((init) => ({ kind: "hostile-strings", bytes: toBinary(desc, create(desc, init as never)), mustReject: false }));
  const invalidUtf8 = fc.tuple(fc.constantFrom(...strings), fc.constantFrom([0xff], [0xc0, 0xaf], [0xed, 0xa0, 0x80])).map(([f, bad]) => ({
    kind: "invalid-utf8-string",
    bytes: Buffer.concat([varint((f.number << 3) | 2), varint(bad.length), Buffer.from(bad)]),
    mustReject: true,
  }));
  const wrongWire = fc.constantFrom(...strings).map((f) => ({ kind: "string-as-varint", bytes: Buffer.concat([varint(f.number << 3), varint(300)]), mustReject: true }));
  const huge = fc.constantFrom(...strings).map((f) => ({ kind: "huge-string", bytes: toBinary(desc, create(desc, { [f.localName]: "x".repeat(100_000) } as never)), mustReject: true }));
  return fc.oneof(garbage, truncated, badLength, groupEnd, fieldZero, { arbitrary: hostileStrings, weight: 3 }, invalidUtf8, wrongWire, huge);
}

for (const store of storesUnderTest()) {
  describe(`hostile RPC input on every method (${store})`, function () {
    this.timeout(120_000);
    let server: TestServer;
    let reader: StoreReader;
    let creds: Credentials;
    let credSets: Array<Record<string, string>>;
    let baseline: Snapshot;
    let session: http2.ClientHttp2Session;
    let generation = 0;

    before(async () => {
      server = await startTestServer({ store, env: { TESSERA_LOGIN_PROTECTION: "false" } });
      creds = await makeCredentials(server, `rpc-${store}-${generation++}`);
      credSets = credentialHeaders(creds);
      reader = await storeReader(server);
      baseline = await reader.snapshot();
      session = http2.connect(server.url);
    });
    after(async () => {
      session?.close();
      await reader?.close();
      await server?.close();
    });

    /** After an answer: refused -> the store is unchanged; accepted with a write -> new credentials. */
    async function checkStore(refused: boolean, what: string): Promise<void> {
      const after = await reader.snapshot();
      const changed = diff(baseline, after);
      if (refused) {
        assert.equal(changed, "", `a refused call changed the store: ${what}\n${changed}`);
      } else if (changed !== "") {
        creds = await makeCredentials(server, `rpc-${store}-${generation++}`);
        credSets = credentialHeaders(creds);
        baseline = await reader.snapshot();
      }
    }


    async function run(arb: fc.Arbitrary<unknown>, property: (input: any) => Promise<void>): Promise<void> {
      await assertProperty(arb, property, runsPerRpc);
      await healthy(server.url);
    }

    for (const { service, method } of rpcs()) {
      const path = `/${service.typeName}/${method.name}`;

      it(`Connect JSON ${method.parent.name}/${method.name}`, async () => {
        await run(fc.record({ cred: fc.nat({ max: 8 }), body: hostileBody(method.input) }), async ({ cred, body }) => {
          const res = await raw(server.url, "POST", path, { ...credSets[cred], "content-type": body.contentType, "connect-protocol-version": "1" }, body.bytes);
          const what = `${path} [${body.kind}] -> ${res.status} ${res.text.slice(0, 300)}`;
          // Store first: an accepted write moves the baseline even when an assertion below fails.
          await checkStore(res.status >= 400, what);
          assert.equal((Object.prototype as Record<string, unknown>).polluted, undefined, `Object.prototype polluted by ${what}`);
          assert.ok(res.status < 500, `server error: ${what}`);
          if (body.mustReject) assert.ok(res.status >= 400, `accepted: ${what}`);
          if (res.status >= 400) {
            // Connect unary errors: a JSON {code, message} body (a 415 for a foreign content type too).
            const err = JSON.parse(res.text) as { code?: unknown; message?: unknown };
            assert.equal(typeof err.code, "string", what);
            assert.ok(!["internal", "unknown"].includes(String(err.code)), what);
          }
        });
      });

      it(`gRPC ${method.parent.name}/${method.name}`, async () => {
        await run(fc.record({ cred: fc.nat({ max: 8 }), payload: hostilePayload(method.input) }), async ({ cred, payload }) => {
          const a = await h2request(
            session,
            { ":method": "POST", ":path": path, "content-type": "application/grpc", te: "trailers", ...credSets[cred] },
            grpcFrame(payload.bytes),
          );
          const status = grpcStatus(a);
          const what = `${path} [${payload.kind}: ${Buffer.from(payload.bytes).subarray(0, 40).toString("hex")}] -> grpc-status ${status} ${a.trailers["grpc-message"] ?? a.headers["grpc-message"] ?? ""}`;
          await checkStore(status !== 0, what);
          assert.equal(a.rstCode, undefined, `stream reset: ${what}`);
          assert.notEqual(status, undefined, `no grpc-status: ${what}`);
          assert.notEqual(status, UNKNOWN, what);
          // (connect-es says INTERNAL for protobuf that does not parse; src/server/dispatch.ts
          // answers INVALID_ARGUMENT, as connect-go does.)
          assert.notEqual(status, INTERNAL, what);
          if (payload.mustReject) assert.notEqual(status, 0, `accepted: ${what}`);
        });
      });
    }
  });
}
