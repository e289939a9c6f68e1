// A property over Tessera's own route table: every path variable of every REST binding (a seed
// 003 token, an account id, a kid) takes any non-empty text, sent percent-encoded as a client's
// URL encoder writes it, or with only the bytes a path segment cannot carry encoded. The path
// finds that binding, and no other, and the variable reads back exactly the text sent, whatever
// it holds: a literal of another route ("user"), a verb (":revoke"), dots, "%", "#" or "?", a
// trailing slash's worth of text, non-ASCII.
import { strict as assert } from "node:assert";
import fc from "fast-check";
import { parsePathTemplate, RouteTable } from "../../src/transcode/index.js";
import { decodeSegment, decodeSegmentKeepSlash } from "../../src/transcode/percent.js";
import { variableValue } from "../../src/transcode/route-table.js";
import { fcParams, restRoutes } from "../hostile/support.js";

/** Encodes what a path segment cannot carry as it is (RFC 3986 pchar), and nothing else. */
const lightly = (text: string) => text.replace(/[^A-Za-z0-9\-._~!$&'()*+,;=:@]/gu, (c) => encodeURIComponent(c));

describe("transcoder: any text in a path variable of Tessera's routes reaches that route, unchanged", () => {
  const routes = restRoutes();
  const table = new RouteTable<number>((i) => String(i));
  // Each binding's template as mounted, its variables named v0, v1, ...
  const templates = routes.map((r) => {
    let n = 0;
    const segments = r.segments.map((s) => ("literal" in s ? s.literal : s.multi ? `{v${n++}=**}` : `{v${n++}}`));
    return parsePathTemplate("/" + segments.join("/") + (r.verb ? `:${r.verb}` : ""));
  });
  routes.forEach((r, i) => table.add(r.httpMethod, templates[i]!, i));
  const withVariables = routes.map((r, i) => ({ r, i })).filter(({ r }) => r.segments.some((s) => "variable" in s));

  it("has the bindings with path variables", () => {
    assert.ok(withVariables.length >= 4, String(withVariables.length));
  });

  for (const { r, i } of withVariables) {
    it(`${r.httpMethod} ${r.path}`, () => {
      const template = templates[i]!;
      const text = fc.oneof(fc.string({ minLength: 1, unit: "grapheme" }), fc.string({ minLength: 1, unit: "binary" }), fc.constantFrom("user", ".", "..", "x:revoke", ":revoke", "%", "a%2Fb", "#", "?", "~", "*"));
      fc.assert(
        fc.property(fc.array(text, { minLength: template.variables.length, maxLength: template.variables.length }), fc.boolean(), (values, light) => {
          // Lone surrogates have no UTF-8 form: no client can send them.
          fc.pre(values.every((v) => !/\p{Cs}/u.test(v)));
          const encode = light ? lightly : encodeURIComponent;
          let v = 0;
          const path = "/" + r.segments.map((s) => ("literal" in s ? s.literal : encode(values[v++]!))).join("/") + (r.verb ? `:${r.verb}` : "");
          const m = table.match(r.httpMethod, path);
          assert.equal(m.kind, "found", path);
          if (m.kind !== "found") return;
          assert.equal(m.match.route, i, `${path} found ${routes[m.match.route]!.path}`);
          template.variables.forEach((variable, k) => {
            assert.equal(variableValue(template, variable, m.match.segments, decodeSegment, decodeSegmentKeepSlash), values[k], path);
          });
        }),
        fcParams(300),
      );
    });
  }
});
