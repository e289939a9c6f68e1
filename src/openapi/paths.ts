// A compiled route's path template as an OpenAPI path: literals as they are, each variable as
// `{field.path}`, the verb kept (`/v1/admin/keys:rotate`).
import type { Route } from "../transcode/binding.js";

export function openApiPath(route: Pick<Route, "template" | "rpcName">): string {
  const t = route.template;
  const parts: string[] = t.segments.map((s) => (s.kind === "literal" ? s.value : s.kind === "wildcard" ? "*" : "**"));
  for (const v of [...t.variables].reverse()) {
    if (v.multiSegment || v.end - v.start !== 1 || parts[v.start] !== "*") {
      // OpenAPI path parameters span one segment.
      throw new Error(`${route.rpcName}: path variable {${v.fieldPath.join(".")}} spans several segments; OpenAPI cannot describe it`);
    }
    parts[v.start] = `{${v.fieldPath.join(".")}}`;
  }
  if (parts.some((p) => p === "*" || p === "**")) {
    throw new Error(`${route.rpcName}: a wildcard outside a variable cannot be described in OpenAPI`);
  }
  return "/" + parts.join("/") + (t.verb !== undefined ? ":" + t.verb : "");
}
