import { strict as assert } from "node:assert";
import { DuplicateRouteError, parsePathTemplate, RouteTable } from "../../src/transcode/index.js";
import { HttpError } from "../../src/transcode/http-error.js";
import { decodeSegment, decodeSegmentKeepSlash } from "../../src/transcode/percent.js";
import { variableValue } from "../../src/transcode/route-table.js";

function table(routes: Array<[string, string]>): RouteTable<string> {
  const t = new RouteTable<string>((r) => r);
  for (const [method, template] of routes) {
    t.add(method, parsePathTemplate(template), `${method} ${template}`);
  }
  return t;
}

function matched(t: RouteTable<string>, method: string, path: string): string {
  const m = t.match(method, path);
  if (m.kind === "found") return m.match.route;
  if (m.kind === "method-not-allowed") return `405 ${m.allow.join(",")}`;
  return "404";
}

describe("route table", () => {
  const routes: Array<[string, string]> = [
    ["GET", "/a/{x}/c"],
    ["GET", "/a/b/{y}"],
    ["GET", "/a/b/d"],
    ["GET", "/f/{p=**}"],
    ["POST", "/f/{p=**}:upload"],
    ["GET", "/f/{p}"],
    ["POST", "/s/{s}:archive"],
    ["DELETE", "/s/{s}"],
    ["GET", "/z/{a=x/*}/{b}"],
  ];
  const expectations: Array<[string, string, string]> = [
    ["GET", "/a/b/d", "GET /a/b/d"], // literal beats variable
    ["GET", "/a/b/e", "GET /a/b/{y}"],
    ["GET", "/a/b/c", "GET /a/b/{y}"], // literal "b" first, then its variable
    ["GET", "/a/q/c", "GET /a/{x}/c"], // backtracks from the literal branch
    ["GET", "/f/one", "GET /f/{p}"], // * beats **
    ["GET", "/f/one/two", "GET /f/{p=**}"],
    ["GET", "/f", "GET /f/{p=**}"], // ** matches zero segments
    ["POST", "/f/one/two:upload", "POST /f/{p=**}:upload"],
    ["POST", "/f/one:nope", "405 GET"],
    ["GET", "/f/one:upload", "GET /f/{p}"], // the colon stays in the value when the verb does not fit
    ["POST", "/s/1:archive", "POST /s/{s}:archive"],
    ["POST", "/s/1:burn", "405 DELETE"],
    ["PUT", "/s/1", "405 DELETE"],
    ["GET", "/s/1/x", "404"],
    ["GET", "/z/x/1/2", "GET /z/{a=x/*}/{b}"],
    ["GET", "/z/y/1/2", "404"],
    ["GET", "/a/b/d/", "GET /a/b/d"], // one trailing slash is ignored
    ["GET", "/a//c", "404"], // an empty segment is no value
    ["GET", "/a/b%2Fx/c", "GET /a/{x}/c"],
    ["GET", "/a/%62/d", "GET /a/b/d"], // literals compare decoded
    ["GET", "/", "404"],
  ];
  const t = table(routes);
  for (const [method, path, want] of expectations) {
    it(`${method} ${path} -> ${want}`, () => {
      assert.equal(matched(t, method, path), want);
    });
  }

  it("matches the same way whatever the declaration order", () => {
    const reversed = table([...routes].reverse());
    for (const [method, path, want] of expectations) {
      assert.equal(matched(reversed, method, path), want, `${method} ${path}`);
    }
  });

  it("refuses two identical routes, even with other variable names", () => {
    const t2 = table([["GET", "/a/{x}"]]);
    assert.throws(() => t2.add("GET", parsePathTemplate("/a/{y}"), "again"), DuplicateRouteError);
    t2.add("POST", parsePathTemplate("/a/{y}"), "other method is fine");
    t2.add("GET", parsePathTemplate("/a/{y}:verb"), "a verb makes another route");
  });

  it("a malformed escape compared with a literal matches no literal and is reported, after the method is known", () => {
    const get = t.match("GET", "/a/%zz/c");
    assert.equal(get.kind, "found");
    assert.equal(get.kind === "found" && get.match.route, "GET /a/{x}/c");
    assert.equal(get.malformed, true);
    // No method to check yet: the path alone decides.
    assert.deepEqual(t.match("POST", "/a/%zz/c"), { kind: "method-not-allowed", allow: ["GET"], malformed: true });
    assert.deepEqual(t.match("GET", "/a/b/d/%zz"), { kind: "not-found", malformed: true });
    // A segment only a variable takes is not decoded on the way (its value is decoded later).
    assert.equal(t.match("GET", "/f/%zz").malformed, false);
    assert.equal(t.match("GET", "/a/b/%62").malformed, false);
    assert.deepEqual(t.methods("/a/%zz/c"), ["GET"]);
  });

  it("decodes single-segment values fully and keeps %2F in multi-segment values", () => {
    const tpl = parsePathTemplate("/f/{p=**}");
    const one = parsePathTemplate("/f/{p}");
    assert.equal(variableValue(one, one.variables[0]!, ["f", "a%2Fb%3F"], decodeSegment, decodeSegmentKeepSlash), "a/b?");
    assert.equal(variableValue(tpl, tpl.variables[0]!, ["f", "a%2fb", "c%20d"], decodeSegment, decodeSegmentKeepSlash), "a%2Fb/c d");
    assert.equal(variableValue(tpl, tpl.variables[0]!, ["f"], decodeSegment, decodeSegmentKeepSlash), "");
    assert.throws(() => decodeSegment("%E0%A4"), HttpError); // not UTF-8
    assert.throws(() => decodeSegmentKeepSlash("a%2Fb%"), HttpError);
  });

  it("describes a path for a 404 or 405 with each segment only a variable takes as *", () => {
    const t = table(routes);
    const cases: Array<[string, string]> = [
      ["/a/b/d", "/a/b/d"],
      ["/a/secret/c", "/a/*/c"], // a variable's value (it may be a credential) is not quoted
      ["/a/b/secret/extra", "/a/b/*/extra"],
      ["/s/secret:archive", "/s/*:archive"], // the verb stays
      ["/f/one/two", "/f/**"],
      // Where the path leaves every route is quoted, what follows is not: a token sent under a
      // wrong prefix (a client's misconfigured base path) never comes back in the error.
      ["/nope/secret", "/nope/*"],
      ["/v2/a/secret/c", "/v2/*/*/*"],
      ["/a/b/secret/extra/secret", "/a/b/*/extra/*"],
      // One trailing slash is ignored in matching, but quoted: a path outside the table (a
      // server's own /healthz) may have a route without it.
      ["/a/", "/a/"],
      ["/nope/secret/", "/nope/*/"],
      ["/", "/"],
      // The segment quoted is quoted as a request's text: cut to 64 characters, escaped.
      [`/${"n".repeat(100)}/x`, `/"${"n".repeat(64)}"... (100 characters)/*`],
      [`/a/b/secret/${"n".repeat(100)}`, `/a/b/*/"${"n".repeat(64)}"... (100 characters)`],
      ['/a"b', '/"a\\"b"'],
    ];
    for (const [path, described] of cases) assert.equal(t.describePath(path), described, path);
  });
});
