import { withoutTrailingSlashes } from "../core/text.js";

/**
 * The google.api.http path template grammar:
 *
 *     Template = "/" Segments [ Verb ] ;
 *     Segments = Segment { "/" Segment } ;
 *     Segment  = "*" | "**" | LITERAL | Variable ;
 *     Variable = "{" FieldPath [ "=" Segments ] "}" ;
 *     FieldPath = IDENT { "." IDENT } ;
 *     Verb     = ":" LITERAL ;
 *
 * `{f}` is `{f=*}`. `**` matches zero or more segments and must be the last segment.
 */

/** One segment of a parsed template. */
export type TemplateSegment =
  | { readonly kind: "literal"; readonly value: string }
  | { readonly kind: "wildcard" } // *
  | { readonly kind: "deep" }; // **

/** A variable covers the template segments [start, end). */
export interface TemplateVariable {
  readonly fieldPath: readonly string[];
  readonly start: number;
  readonly end: number;
  /** True when the variable covers anything but exactly one `*` (its value is a path). */
  readonly multiSegment: boolean;
}

export interface PathTemplate {
  readonly segments: readonly TemplateSegment[];
  readonly variables: readonly TemplateVariable[];
  readonly verb: string | undefined;
}

export class TemplateError extends Error {
  override readonly name = "TemplateError";
  constructor(template: string, reason: string) {
    super(`invalid path template "${template}": ${reason}`);
  }
}

const identRe = /^[A-Za-z_][A-Za-z0-9_]*$/;
// Characters a literal may not contain: they are template syntax or end the path.
const literalStop = new Set(["/", "{", "}", "*", "=", ":", "?", "#"]);

export function parsePathTemplate(template: string): PathTemplate {
  let pos = 0;
  const segments: TemplateSegment[] = [];
  const variables: TemplateVariable[] = [];
  const fail = (reason: string): never => {
    throw new TemplateError(template, reason);
  };

  function literal(): string {
    const start = pos;
    while (pos < template.length && !literalStop.has(template[pos]!)) {
      pos++;
    }
    if (pos === start) {
      fail(`expected a segment at offset ${start}`);
    }
    return template.slice(start, pos);
  }

  function segment(inVariable: boolean): void {
    if (template.startsWith("**", pos)) {
      pos += 2;
      segments.push({ kind: "deep" });
    } else if (template[pos] === "*") {
      pos += 1;
      segments.push({ kind: "wildcard" });
    } else if (template[pos] === "{") {
      if (inVariable) {
        fail("variables cannot nest");
      }
      variable();
    } else {
      segments.push({ kind: "literal", value: literal() });
    }
  }

  function segmentList(inVariable: boolean): void {
    segment(inVariable);
    while (template[pos] === "/") {
      pos++;
      segment(inVariable);
    }
  }

  function variable(): void {
    pos++; // {
    const close = template.indexOf("}", pos);
    if (close < 0) {
      fail("unclosed variable");
    }
    const eq = template.indexOf("=", pos);
    const nameEnd = eq >= 0 && eq < close ? eq : close;
    const fieldPath = template.slice(pos, nameEnd).split(".");
    if (!fieldPath.every((p) => identRe.test(p))) {
      fail(`bad field path "${template.slice(pos, nameEnd)}"`);
    }
    const key = fieldPath.join(".");
    if (variables.some((v) => v.fieldPath.join(".") === key)) {
      fail(`field "${key}" is bound twice`);
    }
    pos = nameEnd;
    const start = segments.length;
    if (template[pos] === "=") {
      pos++;
      segmentList(true);
    } else {
      segments.push({ kind: "wildcard" });
    }
    if (template[pos] !== "}") {
      fail(`expected "}" at offset ${pos}`);
    }
    pos++;
    const end = segments.length;
    const multiSegment = end - start !== 1 || segments[start]!.kind !== "wildcard";
    variables.push({ fieldPath, start, end, multiSegment });
  }

  if (template[0] !== "/") {
    fail('must start with "/"');
  }
  pos = 1;
  segmentList(false);
  let verb: string | undefined;
  if (template[pos] === ":") {
    pos++;
    verb = literal();
  }
  if (pos !== template.length) {
    fail(`unexpected "${template[pos]}" at offset ${pos}`);
  }
  const deep = segments.findIndex((s) => s.kind === "deep");
  if (deep >= 0 && deep !== segments.length - 1) {
    fail('"**" must be the last segment');
  }
  return { segments, variables, verb };
}

/** Joins a base path ("/", "/jwt", "/api/") and a template ("/token") into one template. */
export function joinBasePath(basePath: string, template: string): string {
  const base = withoutTrailingSlashes(basePath);
  if (base !== "" && !base.startsWith("/")) {
    throw new TemplateError(basePath, 'a base path must start with "/"');
  }
  return base + template;
}
