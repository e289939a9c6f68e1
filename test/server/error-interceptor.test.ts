// The error interceptor's mapping: core errors keep code, message and Retry-After and travel
// as the ConnectError's cause (reason included); a store outage is recognised by its type.
import assert from "node:assert/strict";
import { Code, ConnectError } from "@connectrpc/connect";
import { AuthError, missingField, resourceExhausted, unauthenticated } from "../../src/core/errors.js";
import { createLogger } from "../../src/logger.js";
import { toConnectError } from "../../src/server/error-interceptor.js";
import { scrubMessage } from "../../src/server/error-report.js";
import { StoreUnavailableError } from "../../src/store/ports.js";
import { connectDetails } from "../support/error-details.js";
import { within } from "../support/within.js";

describe("server: error interceptor mapping", () => {
  const lines: string[] = [];
  const logger = createLogger("debug", (line) => lines.push(line));
  beforeEach(() => lines.splice(0));

  it("keeps a core error's code, message and Retry-After, and the AuthError (reason and all) as the cause", () => {
    const locked = resourceExhausted("LOGIN_LOCKED", "too many failed logins; try again later", { retryAfterSeconds: 2.2 });
    const e = toConnectError(locked, logger, "/tessera.v1.SessionService/CreateSession");
    assert.equal(e.code, Code.ResourceExhausted);
    assert.equal(e.rawMessage, "too many failed logins; try again later");
    assert.equal(e.metadata.get("retry-after"), "3");
    assert.equal(e.cause, locked);
    assert.equal((e.cause as AuthError).reason, "LOGIN_LOCKED");

    const expired = unauthenticated("TOKEN_EXPIRED", "token expired");
    const u = toConnectError(expired, logger, "/x");
    assert.equal(u.code, Code.Unauthenticated);
    assert.equal(u.metadata.get("retry-after"), null);
    assert.equal((u.cause as AuthError).reason, "TOKEN_EXPIRED");
    assert.deepEqual(lines, [], "expected errors are not logged");
  });

  it("sends the reason as ErrorInfo (domain tessera), the retry time as RetryInfo, field violations as BadRequest", () => {
    const locked = toConnectError(resourceExhausted("LOGIN_LOCKED", "too many failed logins; try again later", { retryAfterSeconds: 2.2 }), logger, "/x");
    assert.deepEqual(connectDetails(locked), { reason: "LOGIN_LOCKED", domain: "tessera", metadata: {}, retryDelaySeconds: 3 });
    const missing = toConnectError(missingField("refresh_token"), logger, "/x");
    assert.deepEqual(connectDetails(missing), {
      reason: "MISSING_FIELDS",
      domain: "tessera",
      metadata: {},
      fieldViolations: [{ field: "refresh_token", description: "refresh_token is required" }],
    });
    assert.deepEqual(connectDetails(toConnectError(unauthenticated("TOKEN_REVOKED", "token revoked"), logger, "/x")), { reason: "TOKEN_REVOKED", domain: "tessera", metadata: {} });
  });

  it("gives a ConnectError raised inside the chain the ErrorInfo of its code (a method without an implementation)", () => {
    const e = toConnectError(new ConnectError("tessera.jwt.v1.JwtService.GetVersion is not implemented", Code.Unimplemented), logger, "/x");
    assert.equal(e.code, Code.Unimplemented);
    assert.deepEqual(connectDetails(e), { reason: "UNIMPLEMENTED", domain: "tessera", metadata: {} });
  });

  it("maps a StoreUnavailableError to UNAVAILABLE with Retry-After: 1 and reason STORE_UNAVAILABLE", () => {
    const outage = new StoreUnavailableError("MongoDB did not answer within 500 ms");
    const e = toConnectError(outage, logger, "/x");
    assert.equal(e.code, Code.Unavailable);
    assert.equal(e.rawMessage, "the store is unavailable, try again shortly");
    assert.equal(e.metadata.get("retry-after"), "1");
    assert.ok(e.cause instanceof AuthError);
    assert.equal(e.cause.reason, "STORE_UNAVAILABLE");
    assert.equal(e.cause.cause, outage);
    assert.deepEqual(connectDetails(e), { reason: "STORE_UNAVAILABLE", domain: "tessera", metadata: {}, retryDelaySeconds: 1 });
    assert.equal(lines.length, 1);
    assert.match(lines[0]!, /store unavailable/);
  });

  it("recognises an outage by its type, not its name: another error named StoreUnavailableError is INTERNAL", () => {
    const impostor = Object.assign(new Error("not from the store"), { name: "StoreUnavailableError" });
    const e = toConnectError(impostor, logger, "/x");
    assert.equal(e.code, Code.Internal);
    assert.equal(e.rawMessage, "internal error");
    assert.equal((e.cause as AuthError).reason, "INTERNAL");
    assert.equal(lines.length, 1);
    assert.match(lines[0]!, /unexpected error/);
  });

  // The log masks each quoted part of an unexpected error's message (a driver's, V8's, quoting
  // their input). The expression that found them read, from each quote left open, the rest of
  // the message: time quadratic in a run of escaped quotes (64 Ki characters: 2.8 s).
  it("logs an unexpected error whose message is 64 Ki characters of escaped quotes at once, its first 500 characters", () => {
    const message = `${'"\\'.repeat(32 * 1024)}x`;
    const e = within(1000, "the log line", () => toConnectError(new Error(message), logger, "/x"));
    assert.equal(e.code, Code.Internal);
    assert.equal(lines.length, 1);
    assert.equal((JSON.parse(lines[0]!) as { error: string }).error, `Error: ${message.slice(0, 500)}…`);
  });

  it("masks each quoted part as before: closed by its own quote, a backslash escaping the next character but a line break", () => {
    const cases: Array<[string, string]> = [
      ['duplicate key { email: "ada@example.com" }', 'duplicate key { email: "…" }'],
      [`Unexpected token 'x', "{'a':1}" is not valid JSON`, `Unexpected token '…', "…" is not valid JSON`],
      ['a "b\\"c" d', 'a "…" d'],
      ['"open \\\n" then "closed"', '"open \\\n"…"closed"'],
      ["`x` 'y' \"z\"", "`…` '…' \"…\""],
      [`"unclosed 'q' \`r\``, `"unclosed '…' \`…\``],
      ['"\\', '"\\'],
    ];
    for (const [message, masked] of cases) assert.equal(scrubMessage(message), masked, JSON.stringify(message));
  });
});
