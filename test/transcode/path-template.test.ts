import { strict as assert } from "node:assert";
import { parsePathTemplate, TemplateError } from "../../src/transcode/index.js";
import { render } from "../../src/transcode/route-table.js";

describe("path template parser", () => {
  const valid: Array<[string, object]> = [
    ["/v1/items", { segments: [{ kind: "literal", value: "v1" }, { kind: "literal", value: "items" }], variables: [], verb: undefined }],
    [
      "/v1/items/{id}",
      {
        segments: [{ kind: "literal", value: "v1" }, { kind: "literal", value: "items" }, { kind: "wildcard" }],
        variables: [{ fieldPath: ["id"], start: 2, end: 3, multiSegment: false }],
        verb: undefined,
      },
    ],
    [
      "/v1/{name=shelves/*/books/*}",
      {
        segments: [
          { kind: "literal", value: "v1" },
          { kind: "literal", value: "shelves" },
          { kind: "wildcard" },
          { kind: "literal", value: "books" },
          { kind: "wildcard" },
        ],
        variables: [{ fieldPath: ["name"], start: 1, end: 5, multiSegment: true }],
        verb: undefined,
      },
    ],
    [
      "/v1/files/{path=**}:upload",
      {
        segments: [{ kind: "literal", value: "v1" }, { kind: "literal", value: "files" }, { kind: "deep" }],
        variables: [{ fieldPath: ["path"], start: 2, end: 3, multiSegment: true }],
        verb: "upload",
      },
    ],
    [
      "/v1/{item.id=*}/x/*",
      {
        segments: [{ kind: "literal", value: "v1" }, { kind: "wildcard" }, { kind: "literal", value: "x" }, { kind: "wildcard" }],
        variables: [{ fieldPath: ["item", "id"], start: 1, end: 2, multiSegment: false }],
        verb: undefined,
      },
    ],
    [
      "/v1/admin/keys:rotate",
      { segments: [{ kind: "literal", value: "v1" }, { kind: "literal", value: "admin" }, { kind: "literal", value: "keys" }], variables: [], verb: "rotate" },
    ],
    ["/.well-known/jwks.json", { segments: [{ kind: "literal", value: ".well-known" }, { kind: "literal", value: "jwks.json" }], variables: [], verb: undefined }],
  ];
  for (const [template, want] of valid) {
    it(`parses ${template}`, () => {
      const t = parsePathTemplate(template);
      assert.deepEqual(t, want);
      assert.equal(render(t), template.replace("{item.id=*}", "{item.id}"));
    });
  }

  const invalid: Array<[string, string]> = [
    ["v1/items", 'must start with "/"'],
    ["/", "expected a segment"],
    ["/v1//items", "expected a segment"],
    ["/v1/{id", "unclosed variable"],
    ["/v1/{a={b}}", "variables cannot nest"],
    ["/v1/{1bad}", "bad field path"],
    ["/v1/{a}/{a}", "bound twice"],
    ["/v1/**/x", '"**" must be the last segment'],
    ["/v1/x:", "expected a segment"],
    ["/v1/x:a:b", "unexpected"],
    ["/v1/x?y", "unexpected"],
  ];
  for (const [template, reason] of invalid) {
    it(`refuses ${template} (${reason})`, () => {
      assert.throws(() => parsePathTemplate(template), (e: unknown) => e instanceof TemplateError && e.message.includes(reason));
    });
  }
});
