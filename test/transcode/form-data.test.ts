// multipart/form-data bodies (loose arguments, seed 004) whose header lines hold long runs of
// white space: the regular expressions that read a part's Content-Transfer-Encoding and the
// Content-Type's boundary tried every way of sharing such a run between their parts, time cubic
// (a part's header line) or quadratic (the boundary) in its length, on a request no credential
// guards. Each is read as before, in time linear in its length.
import { strict as assert } from "node:assert";
import fc from "fast-check";
import { parseMultipartArguments } from "../../src/transcode/form-data.js";
import { HttpError } from "../../src/transcode/http-error.js";
import { within } from "../support/within.js";

/** Far above what each takes now (well under 10 ms), far below what each took (4 s or more). */
const limitMs = 1000;

const timed = <T>(what: string, run: () => T): T => within(limitMs, what, run);

function refusal(run: () => unknown): HttpError {
  try {
    run();
  } catch (e) {
    assert.ok(e instanceof HttpError, String(e));
    return e;
  }
  assert.fail("no error");
}

const part = (header = "") => Buffer.from(`--x\r\nContent-Disposition: form-data; name="user"${header === "" ? "" : `\r\n${header}`}\r\n\r\nada\r\n--x--\r\n`);

describe("multipart/form-data header lines of long white space", () => {
  it("a Content-Transfer-Encoding line of 3000 spaces before a lone LF is no such header (no line terminator in a value), the field read", () => {
    // The lone LF kept the old expression from matching at all: it failed only after trying every
    // three-way split of the spaces (7 s).
    const args = timed("the part", () => parseMultipartArguments(part(`Content-Transfer-Encoding:${" ".repeat(3000)}x\n`), "multipart/form-data; boundary=x"));
    assert.deepEqual(args, [{ key: "user", value: "ada", form: true }]);
  });

  it("a Content-Transfer-Encoding of two words 128 Ki spaces apart is 415 quoting its first 64 characters, white space at either end left out", () => {
    const value = `a${" ".repeat(128 * 1024)}b`;
    const e = timed("the part", () => refusal(() => parseMultipartArguments(part(`Content-Transfer-Encoding: \t${value} \t`), "multipart/form-data; boundary=x")));
    assert.equal(e.status, 415);
    assert.equal(e.message, `form field "user" is in the Content-Transfer-Encoding "a${" ".repeat(63)}"... (131074 characters): a field is read as sent (RFC 7578 4.7)`);
  });

  it("a Content-Type whose boundary= is followed by 64 Ki tabs and an open quote has no boundary parameter: 400", () => {
    const e = timed("the Content-Type", () => refusal(() => parseMultipartArguments(part(), `multipart/form-data; boundary=${"\t".repeat(64 * 1024)}"`)));
    assert.equal(e.status, 400);
    assert.equal(e.message, "multipart/form-data without a boundary parameter");
  });

  it("a boundary after white space, quoted or not, is read as before", () => {
    assert.deepEqual(parseMultipartArguments(part(), "multipart/form-data; boundary= \t x \t; charset=utf-8"), [{ key: "user", value: "ada", form: true }]);
    assert.deepEqual(parseMultipartArguments(part(), 'multipart/form-data;boundary=\t"x"'), [{ key: "user", value: "ada", form: true }]);
  });
});

// RFC 6266 4.1: a part's Content-Disposition parameters, each a name, "=" and a token or a
// quoted-string (RFC 9110 5.6.4: `\` escapes the character after it), are read left to right; a
// quoted value is one value, whatever it holds (";", "name=", quotes, backslashes).
describe("multipart/form-data Content-Disposition parameters", () => {
  const quotedString = (text: string) => `"${text.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
  const text = fc.string({ unit: fc.constantFrom("a", "\\", '"', ";", " ", "=", "name", "name=", "filename=", "é"), maxLength: 12 });
  const body = (parameters: string) => Buffer.from(`--x\r\nContent-Disposition: form-data${parameters}\r\n\r\nada\r\n--x--\r\n`);

  it("the field is the name parameter's value, whatever other parameters before or after it quote", () => {
    const other = fc.tuple(fc.constantFrom("note", "x", "size", "creation-date"), text).map(([name, value]) => `; ${name}=${quotedString(value)}`);
    fc.assert(
      fc.property(fc.array(other, { maxLength: 2 }), text.filter((t) => t !== ""), fc.array(other, { maxLength: 2 }), (before, name, after) => {
        const names = [...before, ...after].map((p) => p.slice(2, p.indexOf("=")));
        fc.pre(new Set(names).size === names.length);
        const args = parseMultipartArguments(body(`${before.join("")}; name=${quotedString(name)}${after.join("")}`), "multipart/form-data; boundary=x");
        assert.deepEqual(args, [{ key: name, value: "ada", form: true }]);
      }),
      { numRuns: 2000 },
    );
  });

  it("the Content-Type's boundary is its boundary parameter's value, whatever other parameters quote", () => {
    const content = fc.string({ unit: fc.constantFrom("a", "\\", '"', ";", " ", "=", "boundary=", "boundary=y;"), maxLength: 12 });
    const other = fc.tuple(fc.constantFrom("charset", "x"), content).map(([name, value]) => `; ${name}=${quotedString(value)}`);
    fc.assert(
      fc.property(fc.array(other, { maxLength: 1 }), fc.array(other, { maxLength: 1 }), (before, after) => {
        const args = parseMultipartArguments(body('; name="user"'), `multipart/form-data${before.join("")}; boundary=x${after.join("")}`);
        assert.deepEqual(args, [{ key: "user", value: "ada", form: true }]);
      }),
      { numRuns: 2000 },
    );
  });

  it("a value of 256 Ki backslashes and quotes is read in time linear in its length", () => {
    const name = '\\"'.repeat(128 * 1024);
    const args = timed("the part", () => parseMultipartArguments(body(`; name=${quotedString(name)}`), "multipart/form-data; boundary=x"));
    assert.equal(args[0]!.key, name);
  });
});

// RFC 2231's forms of a parameter (`name*`, `name*0`, `name*1*`: extended, continued) name that
// parameter: Flask reads `name*=UTF-8''pass` as the name `pass`, joins `name*0` and `name*1`,
// and takes `filename*0` for a filename. Read as other parameters, a part Flask sees as `pass`
// (or as a file) was read as the field `user`.
describe("multipart/form-data Content-Disposition parameters in RFC 2231's forms", () => {
  const body = (parameters: string) => Buffer.from(`--x\r\nContent-Disposition: form-data; ${parameters}\r\n\r\nada\r\n--x--\r\n`);
  const read = (parameters: string) => refusal(() => parseMultipartArguments(body(parameters), "multipart/form-data; boundary=x"));

  it("name given again as name*, name*0 or name*1* is 400 MALFORMED_BODY, a parameter named more than once", () => {
    for (const parameters of [`name="user"; name*=UTF-8''pass`, `name*=UTF-8''pass; name="user"`, 'name="user"; name*0="pass"', `name="user"; NAME*1*=UTF-8''pass`]) {
      const e = read(parameters);
      assert.deepEqual(
        [e.status, e.reason, e.message],
        [400, "MALFORMED_BODY", "a part of the multipart/form-data body names a Content-Disposition parameter more than once: each must be named once (RFC 6266 4.1)"],
        parameters,
      );
    }
  });

  it("a filename in RFC 2231's forms (filename*0, filename*0*) makes the part a file: 400 MALFORMED_BODY", () => {
    for (const parameters of ['name="user"; filename*0="a.txt"', `name="user"; filename*0*=UTF-8''a.txt`]) {
      const e = read(parameters);
      assert.deepEqual([e.status, e.reason, e.message], [400, "MALFORMED_BODY", 'form field "user" is a file: only text fields are accepted'], parameters);
    }
  });
});

// Parameters that are no list of name=value (RFC 9110 5.6.6) are refused, not passed over (README).
describe("multipart/form-data parameters that are no such list", () => {
  it("a part's is 400 MALFORMED_BODY, not valid multipart/form-data; a Content-Type's has no boundary parameter", () => {
    for (const parameters of ['name="user"; x', 'name="user" x', 'name="user"; filename="a\\"']) {
      const e = refusal(() => parseMultipartArguments(Buffer.from(`--x\r\nContent-Disposition: form-data; ${parameters}\r\n\r\nada\r\n--x--\r\n`), "multipart/form-data; boundary=x"));
      assert.deepEqual([e.status, e.reason, e.message], [400, "MALFORMED_BODY", "form body is not valid multipart/form-data"], parameters);
    }
    for (const contentType of ["multipart/form-data; boundary=x; charset", 'multipart/form-data; boundary=x; a="b']) {
      const e = refusal(() => parseMultipartArguments(part(), contentType));
      assert.deepEqual([e.status, e.reason, e.message], [400, "MALFORMED_BODY", "multipart/form-data without a boundary parameter"], contentType);
    }
  });
});

// A quoted value's `\` before a character other than `\` or `"`: RFC 9110 5.6.4 reads `\a` as
// `a`, Flask (the reference, werkzeug) as the backslash and `a`, and a browser, which escapes no
// backslash (the HTML Standard's multipart/form-data encoding), means the backslash too. Read as
// RFC 9110 reads it, the part `name="p\ass"` was the field pass, which Flask sees as p\ass.
describe("multipart/form-data quoted values: a backslash before another character", () => {
  it("is 400 MALFORMED_BODY, in a part's Content-Disposition and in the Content-Type", () => {
    for (const parameters of ['name="p\\ass"', 'name="user"; note="\\a"']) {
      const e = refusal(() => parseMultipartArguments(Buffer.from(`--x\r\nContent-Disposition: form-data; ${parameters}\r\n\r\nada\r\n--x--\r\n`), "multipart/form-data; boundary=x"));
      assert.deepEqual([e.status, e.reason, e.message], [400, "MALFORMED_BODY", "form body is not valid multipart/form-data"], parameters);
    }
    const e = refusal(() => parseMultipartArguments(part(), 'multipart/form-data; boundary="\\x"'));
    assert.deepEqual([e.status, e.reason, e.message], [400, "MALFORMED_BODY", "multipart/form-data without a boundary parameter"]);
  });

  it("\\\\ and \\\" are a backslash and a quote", () => {
    const body = Buffer.from(`--x\r\nContent-Disposition: form-data; note="a\\\\\\"b"; name="user"\r\n\r\nada\r\n--x--\r\n`);
    assert.deepEqual(parseMultipartArguments(body, 'multipart/form-data; x="\\\\\\""; boundary=x'), [{ key: "user", value: "ada", form: true }]);
  });
});
