// The errors the core raises as answers (a wrong password, a lock, a full hasher) are made
// without a stack trace: a flood of refusals paid for two captures each (the AuthError and the
// ConnectError made from it). Internal errors, which are logged, keep theirs; and capturing stays
// on for everything else.
import assert from "node:assert/strict";
import { internal, recode, resourceExhausted, unauthenticated, unavailable } from "../../src/core/errors.js";
import { toConnectError } from "../../src/server/error-interceptor.js";
import { silentLogger } from "../../src/logger.js";

const frames = (e: Error) => (e.stack ?? "").split("\n").filter((l) => /^\s+at /.test(l)).length;

describe("core: errors raised as answers carry no stack trace", () => {
  it("unauthenticated, resource_exhausted and unavailable errors, and a recoded one: no frames; the message is kept", () => {
    const errors = [
      unauthenticated("INVALID_CREDENTIALS", "invalid login or password"),
      resourceExhausted("LOGIN_LOCKED", "too many failed logins; try again later", { retryAfterSeconds: 60 }),
      unavailable("HASHER_BUSY", "too many password checks in progress; retry shortly", { retryAfterSeconds: 2 }),
    ];
    errors.push(recode(errors[0]!, "permission_denied"));
    for (const e of errors) {
      assert.equal(frames(e), 0, e.stack);
      assert.equal(e.stack, `AuthError: ${e.message}`);
    }
  });

  it("an internal error keeps its stack; so do errors made after one without (the limit is restored)", () => {
    unauthenticated("INVALID_CREDENTIALS", "invalid login or password");
    assert.ok(frames(internal("INTERNAL", "internal error")) > 0);
    assert.ok(frames(new Error("plain")) > 0);
  });

  it("the ConnectError an answer becomes carries no stack either", () => {
    const e = toConnectError(unavailable("HASHER_BUSY", "too many password checks in progress; retry shortly", { retryAfterSeconds: 1 }), silentLogger, "/tessera.jwt.v1.JwtService/CreateUser");
    assert.equal(frames(e), 0, e.stack);
  });
});
