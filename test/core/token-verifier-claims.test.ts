// Claims jose's checks let through but no reader can use, in a token signed with the verifier's
// own HS256 key: each refused INVALID_TOKEN naming the claim, also where an expired token is
// taken (allowExpired: a session's refresh), never the claims handed on.
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { AuthError } from "../../src/core/errors.js";
import { TokenVerifier } from "../../src/core/token-verifier.js";

const key = new Uint8Array(32).fill(7);
const now = new Date("2030-01-01T00:00:00Z");
const seconds = now.getTime() / 1000;
const ring = { algorithms: ["HS256" as const], keyFor: async (kid: string) => (kid === "k" ? { alg: "HS256" as const, kid, publicKey: key } : undefined) };

/** An HS256 token of the key above whose payload is `payload`, as JSON text. */
function token(payload: string): string {
  const input = `${Buffer.from(JSON.stringify({ alg: "HS256", kid: "k", typ: "JWT" })).toString("base64url")}.${Buffer.from(payload).toString("base64url")}`;
  return `${input}.${createHmac("sha256", key).update(input).digest("base64url")}`;
}

async function refusal(text: string, allowExpired: boolean): Promise<[string, string]> {
  const verifier = new TokenVerifier({ ring, clock: { now: () => now } });
  try {
    const claims = await verifier.verify(token(text), { allowExpired });
    return ["accepted", JSON.stringify(claims)];
  } catch (e) {
    assert.ok(e instanceof AuthError, String(e));
    return [e.reason, e.message];
  }
}

describe("core: token verifier, claims no reader can use", () => {
  const valid = `"sub":"u","iat":${seconds},"nbf":${seconds}`;
  const expired = `"sub":"u","iat":${seconds - 7200},"exp":${seconds - 3600}`;
  for (const [name, payload, message] of [
    ["exp 1e400", `{${valid},"exp":1e400}`, 'malformed token: "exp" claim must be a finite number'],
    ["nbf 1e400", `{"sub":"u","iat":${seconds},"nbf":1e400,"exp":${seconds + 60}}`, 'malformed token: "nbf" claim must be a finite number'],
    ["exp 1e300", `{${valid},"exp":1e300}`, 'malformed token: "exp" claim is out of range'],
    ["nbf a string", `{"sub":"u","iat":${seconds},"nbf":"now","exp":${seconds + 60}}`, 'malformed token: "nbf" claim must be a number'],
    ["iat null", `{"sub":"u","iat":null,"exp":${seconds + 60}}`, 'malformed token: "iat" claim must be a number'],
    ["an expired token's iat -1e400", `{"sub":"u","iat":-1e400,"exp":${seconds - 3600}}`, 'malformed token: "iat" claim must be a finite number'],
    ["an expired token with a claim of 1e400 in a list", `{${expired},"x":[1,1e400]}`, 'malformed token: "x" claim must be a finite number'],
  ] as const) {
    for (const allowExpired of [false, true]) {
      it(`${name}${allowExpired ? " (expired tokens taken)" : ""}: INVALID_TOKEN naming the claim`, async () => {
        assert.deepEqual(await refusal(payload, allowExpired), ["INVALID_TOKEN", message]);
      });
    }
  }

  it("control: a valid token, and an expired one where expired tokens are taken, are accepted", async () => {
    assert.equal((await refusal(`{${valid},"exp":${seconds + 60}}`, false))[0], "accepted");
    assert.equal((await refusal(`{${expired}}`, true))[0], "accepted");
    assert.deepEqual(await refusal(`{${expired}}`, false), ["TOKEN_EXPIRED", "token expired"]);
  });
});

// iat is when the token was issued: one issued after the verifier's now by more than
// IAT_LEEWAY_SECONDS (a minute: another instance's clock some seconds ahead is taken) is not yet
// valid, as one whose nbf is ahead by more than NBF_LEEWAY_SECONDS (5 s); exp has none. Every
// token Tessera signs carries iat: one without it is no such token.
describe("core: token verifier, iat", () => {
  const exp = seconds + 3600;
  for (const [name, payload, answer] of [
    ["iat 61 s ahead, no nbf", `{"sub":"u","iat":${seconds + 61},"exp":${exp}}`, ["TOKEN_NOT_YET_VALID", "token issued in the future"]],
    ["iat an hour ahead, nbf now", `{"sub":"u","iat":${seconds + 3600},"nbf":${seconds},"exp":${exp + 3600}}`, ["TOKEN_NOT_YET_VALID", "token issued in the future"]],
    ["iat 61 s ahead, nbf 5 s ahead", `{"sub":"u","iat":${seconds + 61},"nbf":${seconds + 5},"exp":${exp}}`, ["TOKEN_NOT_YET_VALID", "token issued in the future"]],
    ["iat 60 s ahead, no nbf", `{"sub":"u","iat":${seconds + 60},"exp":${exp}}`, ["accepted"]],
    ["iat 10 s ahead, no nbf (seed 000's session tokens carry none)", `{"sub":"u","iat":${seconds + 10},"exp":${exp}}`, ["accepted"]],
    ["iat 60 s ahead, nbf 5 s ahead", `{"sub":"u","iat":${seconds + 60},"nbf":${seconds + 5},"exp":${exp}}`, ["accepted"]],
    ["iat 3 s ahead, nbf 5 s ahead", `{"sub":"u","iat":${seconds + 3},"nbf":${seconds + 5},"exp":${exp}}`, ["accepted"]],
    ["iat 3 s ahead, nbf 6 s ahead", `{"sub":"u","iat":${seconds + 3},"nbf":${seconds + 6},"exp":${exp}}`, ["TOKEN_NOT_YET_VALID", "token not yet valid"]],
    ["iat now", `{"sub":"u","iat":${seconds},"exp":${exp}}`, ["accepted"]],
    ["no iat", `{"sub":"u","exp":${exp}}`, ["INVALID_TOKEN", "token has no issue time"]],
  ] as const) {
    it(`${name}: ${answer.join(" ")}`, async () => {
      const [reason, message] = await refusal(payload, false);
      assert.deepEqual(reason === "accepted" ? [reason] : [reason, message], answer);
    });
  }

  it("where expired tokens are taken, an expired one issued in the future (beyond the leeway) is refused all the same", async () => {
    assert.deepEqual(await refusal(`{"sub":"u","iat":${seconds + 61},"exp":${seconds - 1}}`, true), ["TOKEN_NOT_YET_VALID", "token issued in the future"]);
    assert.equal((await refusal(`{"sub":"u","iat":${seconds + 60},"exp":${seconds - 1}}`, true))[0], "accepted");
  });

  it("a token verified once is refused again once the clock is more than 60 s before its iat", async () => {
    let at = now;
    const verifier = new TokenVerifier({ ring, clock: { now: () => at } });
    const issued = token(`{"sub":"u","iat":${seconds},"exp":${exp}}`);
    assert.equal((await verifier.verify(issued)).sub, "u");
    at = new Date(now.getTime() - 61_000);
    await assert.rejects(verifier.verify(issued), (e) => e instanceof AuthError && e.reason === "TOKEN_NOT_YET_VALID" && e.message === "token issued in the future");
    at = new Date(now.getTime() - 60_000);
    assert.equal((await verifier.verify(issued)).sub, "u");
  });
});

describe("core: token verifier, the header's typ", () => {
  const payload = `{"sub":"u","iat":${seconds},"exp":${seconds + 60}}`;
  /** An HS256 token of the key above whose header is `header`, as JSON text. */
  function typed(header: string): string {
    const input = `${Buffer.from(header).toString("base64url")}.${Buffer.from(payload).toString("base64url")}`;
    return `${input}.${createHmac("sha256", key).update(input).digest("base64url")}`;
  }
  async function answer(header: string, allowExpired: boolean): Promise<[string, string]> {
    try {
      await new TokenVerifier({ ring, clock: { now: () => now } }).verify(typed(header), { allowExpired });
      return ["accepted", ""];
    } catch (e) {
      assert.ok(e instanceof AuthError, String(e));
      return [e.reason, e.message];
    }
  }
  for (const allowExpired of [false, true]) {
    const where = allowExpired ? " (expired tokens taken)" : "";
    it(`"JWT", compared as a media type, is accepted${where}`, async () => {
      for (const typ of ["JWT", "jwt", "application/JWT", "Application/jwt"]) {
        assert.deepEqual(await answer(`{"alg":"HS256","kid":"k","typ":${JSON.stringify(typ)}}`, allowExpired), ["accepted", ""], typ);
      }
    });
    it(`any other typ, or none, is INVALID_TOKEN naming it${where}`, async () => {
      for (const [typ, message] of [
        [undefined, 'token has no type: header "typ" must be "JWT"'],
        ['"at+jwt"', 'unexpected token type "at+jwt": header "typ" must be "JWT"'],
        ['"JOSE"', 'unexpected token type "JOSE": header "typ" must be "JWT"'],
        ['"JWT "', 'unexpected token type "JWT ": header "typ" must be "JWT"'],
        ['"a\\nb"', 'unexpected token type "a\\nb": header "typ" must be "JWT"'],
        ["1", 'unexpected token type of JSON type number: header "typ" must be "JWT"'],
        ["null", 'unexpected token type of JSON type null: header "typ" must be "JWT"'],
        ['["JWT"]', 'unexpected token type of JSON type array: header "typ" must be "JWT"'],
      ] as const) {
        const header = typ === undefined ? '{"alg":"HS256","kid":"k"}' : `{"alg":"HS256","kid":"k","typ":${typ}}`;
        assert.deepEqual(await answer(header, allowExpired), ["INVALID_TOKEN", message], header);
      }
    });
  }
});
