// A request's text as an error quotes it (a Content-Type, a Content-Encoding, a timeout, a Host):
// the password of a URL in it is hidden first, by an expression that read a run of tabs after
// "scheme:" as slashes or as the user name, and tried every split between the two when the rest
// did not match: time quadratic in the run (16 KiB of tabs in a header: 0.4 s a quote; 48 Ki:
// 3 s). It is read one way now; what is hidden is unchanged.
import { strict as assert } from "node:assert";
import { quoted, unroutedPath, withoutUrlPassword, withoutUrlPasswords } from "../../src/core/text.js";
import { within } from "../support/within.js";

/** Far above what a quote takes now (well under 10 ms), a third of what the one below took. */
const limitMs = 1000;

describe("quoting a request's text", () => {
  it("48 Ki tabs after a scheme's colon are quoted (their first 64 characters) at once", () => {
    const text = `a:${"\t".repeat(48 * 1024)}x`;
    const q = within(limitMs, "the quote", () => quoted(text));
    assert.equal(q, `${JSON.stringify(text.slice(0, 64))}... (${text.length} characters)`);
  });

  it("a URL's password is hidden as before, tabs, line breaks and backslashes around its slashes and in its user name", () => {
    const cases: Array<[string, string]> = [
      ["https://user:pw@host/x", "https://user:<hidden>@host/x"],
      ["https:\t//\tuser:pw@host", "https:\t//\tuser:<hidden>@host"],
      ["https:\\\\u\\s\ter:p:w@h@host/p@x", "https:\\\\u\\s\ter:<hidden>@host/p@x"],
      [" \u0000http:\n\r//:pw@host", " \u0000http:\n\r//:<hidden>@host"],
      ["https://\t\t\t:pw@host", "https://\t\t\t:<hidden>@host"],
      ["https://user@host", "https://user@host"],
      ["https://u/ser:pw@host", "https://u/ser:pw@host"],
      ["a:\t\t\t:\t\t\t", "a:\t\t\t:\t\t\t"],
    ];
    for (const [value, shown] of cases) assert.equal(withoutUrlPassword(value), shown, JSON.stringify(value));
  });

  it("a URL's password is hidden wherever the URL stands in the text, each URL's", () => {
    const cases: Array<[string, string]> = [
      ["text/plain; x=https://user:pw@host/", "text/plain; x=https://user:<hidden>@host/"],
      ["gzip, https://a:b@h1/ ftp://c:d@h2", "gzip, https://a:<hidden>@h1/ ftp://c:<hidden>@h2"],
      ["x=1 https://user@host/a:b@c", "x=1 https://user@host/a:b@c"],
      ["1:2:3@4", "1:2:3@4"],
      ["text/plain", "text/plain"],
    ];
    for (const [value, shown] of cases) assert.equal(withoutUrlPassword(value), shown, JSON.stringify(value));
    assert.equal(quoted("text/plain; x=https://user:pw@host/"), '"text/plain; x=https://user:<hidden>@host/"');
  });

  it("text of 64 Ki colons, each after a letter, and an @ at the end is quoted at once", () => {
    const cases: Array<[string, string]> = [
      [`${"a:".repeat(64 * 1024)}@`, '"a:a:<hidden>@"'],
      [`${"a:b".repeat(48 * 1024)}@`, '"a:ba:<hidden>@"'],
      [`${"a:\t".repeat(48 * 1024)}@`, '"a:\\ta:<hidden>@"'],
    ];
    for (const [text, shown] of cases) assert.equal(within(limitMs, "the quote", () => quoted(text)), shown);
  });

  it("an unrouted path's first segment is shown as sent when short and plain, else quoted as a request's text", () => {
    const hidden = () => false;
    assert.equal(unroutedPath("/nope/x", hidden), "/nope/*");
    assert.equal(unroutedPath(`/${"n".repeat(100)}/x`, hidden), `/"${"n".repeat(64)}"... (100 characters)/*`);
    assert.equal(unroutedPath("/a\u0007b", hidden), '/"a\\u0007b"');
    assert.equal(unroutedPath("/secret", (t) => t === "secret"), "/*");
  });
});

// A configuration error's message and a start failure's line (a store driver's message, which
// Tessera does not bound) hide the password of every "//user:password@" they hold. The
// expression that did it tried each "//" with the rest of its word when no "@" followed: time
// quadratic in a run of "//:" (64 Ki characters: 2.3 s).
describe("hiding URL passwords in a failure's message", () => {
  it("64 Ki characters of \"//:\", an @ after them or not, are read at once, the password hidden as before", () => {
    const run = "//:".repeat(22 * 1024);
    const cases: Array<[string, string]> = [
      [run, run],
      [`${run} x@y`, `${run} x@y`],
      [`${run}@`, "//:<hidden>@"],
      [`a "${run}"@b`, `a "${run}"@b`],
    ];
    for (const [text, shown] of cases) assert.equal(within(limitMs, "hiding the passwords", () => withoutUrlPasswords(text)), shown);
  });

  it("each URL's password is hidden up to the last @ of its word, nothing across a space or a quote", () => {
    const cases: Array<[string, string]> = [
      ["TESSERA_OTLP_ENDPOINT: https://ada:pw@collector:4318/ is not", "TESSERA_OTLP_ENDPOINT: https://ada:<hidden>@collector:4318/ is not"],
      ["mongodb://u:p@a@h1/db and http://v:q@h2", "mongodb://u:<hidden>@h1/db and http://v:<hidden>@h2"],
      ['origin "https://a:b"@c', 'origin "https://a:b"@c'],
      ["//a/b:c@d //e:f@g", "//a/b:c@d //e:<hidden>@g"],
      ["///:x@y", "///:<hidden>@y"],
      ["//a@b:c@d", "//a@b:c@d"],
      ["//:@", "//:<hidden>@"],
      ["https://user@host", "https://user@host"],
      ["x//u:p@h//v:q@i", "x//u:<hidden>@i"],
      ["\u00a0//u:p@h\u2028//v:w@k", "\u00a0//u:<hidden>@h\u2028//v:<hidden>@k"],
    ];
    for (const [text, shown] of cases) assert.equal(withoutUrlPasswords(text), shown, JSON.stringify(text));
  });
});
