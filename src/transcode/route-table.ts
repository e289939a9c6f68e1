import { tryDecodeSegment } from "./percent.js";
import type { PathTemplate } from "./path-template.js";
import { credentialShaped, holdsCredential } from "../credential-shapes.js";
import { describedPath, describedSegmentsMax, shownRequestText } from "../core/text.js";

/**
 * A segment trie of path templates, built once at start-up.
 *
 * Matching walks the raw (still percent-encoded) request segments and tries, at each level,
 * the literal child first, then `*`, then `**`, backtracking on a dead end. So a literal beats
 * `*`, which beats `**`, whatever order the routes were added in.
 *
 * The verb: when the last segment contains ":" and the text after the last ":" is a verb some
 * route uses, the path is first matched with that verb split off, then again with the colon
 * kept as part of the segment (so `foo:bar` is a plain value where no `:bar` route exists).
 *
 * A segment that does not percent-decode matches no literal; the match says so (`malformed`)
 * and does not throw, so that the caller checks the method before it refuses the path.
 */

export interface RouteMatch<T> {
  readonly route: T;
  readonly template: PathTemplate;
  /** Raw request segments, verb removed. */
  readonly segments: readonly string[];
}

export type MatchResult<T> = (
  | { readonly kind: "found"; readonly match: RouteMatch<T> }
  | { readonly kind: "method-not-allowed"; readonly allow: readonly string[] }
  | { readonly kind: "not-found" }
) & {
  /**
   * A segment the walk decoded did not percent-decode: one compared with a literal on the way
   * to the route, or, when no route of the method is found, any segment the walk visited.
   * Matching took it for no literal; the caller refuses the path (400) once it has checked
   * the method.
   */
  readonly malformed: boolean;
};

/** What a walk of the trie met on the way (match). */
interface Walk {
  malformed: boolean;
}

/** The literal child a raw segment leads to; a segment that does not decode leads to none. */
function literalChild<T>(node: TrieNode<T>, seg: string, walk: Walk): TrieNode<T> | undefined {
  const decoded = tryDecodeSegment(seg);
  if (decoded === undefined) {
    walk.malformed = true;
    return undefined;
  }
  return node.literals.get(decoded);
}

interface Leaf<T> {
  readonly route: T;
  readonly template: PathTemplate;
}

class TrieNode<T> {
  readonly literals = new Map<string, TrieNode<T>>();
  wildcard: TrieNode<T> | undefined;
  deep: TrieNode<T> | undefined;
  /** verb ("" for none) -> HTTP method -> leaf */
  readonly leaves = new Map<string, Map<string, Leaf<T>>>();
}

export class DuplicateRouteError extends Error {
  override readonly name = "DuplicateRouteError";
}

export class RouteTable<T> {
  private readonly root = new TrieNode<T>();
  private readonly verbs = new Set<string>();
  private readonly describe: (route: T) => string;
  private readonly unquotable: (segment: string) => boolean;

  /** `unquotable`: a segment describePath never quotes (default: a credential's shape). */
  constructor(describe: (route: T) => string, unquotable: (segment: string) => boolean = credentialShaped) {
    this.describe = describe;
    this.unquotable = unquotable;
  }

  add(method: string, template: PathTemplate, route: T): void {
    let node = this.root;
    for (const seg of template.segments) {
      switch (seg.kind) {
        case "literal": {
          let next = node.literals.get(seg.value);
          if (!next) {
            next = new TrieNode<T>();
            node.literals.set(seg.value, next);
          }
          node = next;
          break;
        }
        case "wildcard":
          node = node.wildcard ??= new TrieNode<T>();
          break;
        case "deep":
          node = node.deep ??= new TrieNode<T>();
          break;
      }
    }
    const verb = template.verb ?? "";
    if (verb !== "") {
      this.verbs.add(verb);
    }
    let byMethod = node.leaves.get(verb);
    if (!byMethod) {
      byMethod = new Map();
      node.leaves.set(verb, byMethod);
    }
    const existing = byMethod.get(method);
    if (existing) {
      throw new DuplicateRouteError(
        `duplicate route ${method} ${render(template)}: ${this.describe(existing.route)} and ${this.describe(route)}`,
      );
    }
    byMethod.set(method, { route, template });
  }

  /**
   * Matches a raw path (no query string). One trailing slash is ignored ("/a/b/" is "/a/b").
   * A malformed escape in a segment compared with a literal matches no literal and sets
   * `malformed` (MatchResult).
   */
  match(method: string, rawPath: string): MatchResult<T> {
    let path = rawPath;
    if (path.length > 1 && path.endsWith("/")) {
      path = path.slice(0, -1);
    }
    const segments = path === "/" ? [] : path.slice(1).split("/");
    const candidates = this.verbCandidates(segments);
    const walk: Walk = { malformed: false };
    for (const [segs, verb] of candidates) {
      const leaf = this.find(this.root, segs, 0, verb, method, walk);
      if (leaf) {
        return { kind: "found", match: { route: leaf.route, template: leaf.template, segments: segs }, malformed: walk.malformed };
      }
    }
    const allow = this.collect(candidates, walk);
    if (allow.length > 0) {
      return { kind: "method-not-allowed", allow, malformed: walk.malformed };
    }
    return { kind: "not-found", malformed: walk.malformed };
  }

  /** Every method some route takes at a raw path (sorted; empty when none does), as match() finds them. */
  methods(rawPath: string): string[] {
    let path = rawPath;
    if (path.length > 1 && path.endsWith("/")) {
      path = path.slice(0, -1);
    }
    return this.collect(this.verbCandidates(path === "/" ? [] : path.slice(1).split("/")), { malformed: false });
  }

  private collect(candidates: Array<[string[], string]>, walk: Walk): string[] {
    const allow = new Set<string>();
    for (const [segs, verb] of candidates) {
      this.collectMethods(this.root, segs, 0, verb, allow, walk);
    }
    return [...allow].sort();
  }

  /**
   * The raw path as an error message may quote it: each segment that only a variable of some
   * route would take (no literal of the routes at that point matches it) is written "*", since a
   * path variable may hold a credential (`/api/authenticationtoken/{token}`); the walk follows
   * literals first, as matching does. The segment where the path leaves every route is quoted
   * (it names what is wrong), unless it holds a credential (holdsCredential: a token after a
   * verb's colon too); each segment after it is "*" too: a token sent under a wrong
   * prefix (`/v2/api/authenticationtoken/{token}/user`) is not quoted back. One trailing slash
   * is passed over, as in match(), and written back: a server may answer paths outside the
   * table (its /healthz), and "no route for GET /healthz" would deny the one it has. At most
   * describedSegmentsMax segments are written, then their count (describedPath).
   */
  describePath(rawPath: string): string {
    let path = rawPath;
    const slash = path.length > 1 && path.endsWith("/") ? "/" : "";
    if (slash) path = path.slice(0, -1);
    if (path === "/" || !path.startsWith("/")) return path + slash;
    const segments = path.slice(1).split("/");
    let node: TrieNode<T> | undefined = this.root;
    const out: string[] = [];
    for (let i = 0; i < segments.length; i++) {
      const seg = segments[i]!;
      if (node === undefined) {
        out.push("*");
        continue;
      }
      if (node.deep) {
        // `**` takes everything that follows.
        out.push("**");
        break;
      }
      const literal: TrieNode<T> | undefined = literalChild(node, seg, { malformed: false });
      if (literal) {
        out.push(seg);
        node = literal;
      } else if (node.wildcard && seg !== "") {
        // A verb some route uses stays (`/v1/admin/keys/*:revoke`).
        const colon = i === segments.length - 1 ? seg.lastIndexOf(":") : -1;
        out.push(colon >= 0 && this.verbs.has(seg.slice(colon + 1)) ? `*${seg.slice(colon)}` : "*");
        node = node.wildcard;
      } else {
        // The first segment no route has names the mistake, unless it holds a token in the wrong
        // place, as itself or joined to other text (`keys:<token>`), as sent or percent-decoded.
        const decoded = tryDecodeSegment(seg);
        const hides = holdsCredential(seg, this.unquotable) || (decoded !== undefined && holdsCredential(decoded, this.unquotable));
        out.push(hides ? "*" : shownRequestText(seg, this.unquotable));
        node = undefined;
      }
    }
    // At most describedSegmentsMax of them, then their count (the trailing slash, past them, left out).
    return out.length > describedSegmentsMax ? describedPath(out, segments.length) : describedPath(out, out.length) + slash;
  }

  private verbCandidates(segments: string[]): Array<[string[], string]> {
    const out: Array<[string[], string]> = [];
    if (this.verbs.size > 0 && segments.length > 0) {
      const last = segments[segments.length - 1]!;
      const colon = last.lastIndexOf(":");
      if (colon >= 0 && this.verbs.has(last.slice(colon + 1))) {
        const segs = segments.slice();
        segs[segs.length - 1] = last.slice(0, colon);
        out.push([segs, last.slice(colon + 1)]);
      }
    }
    out.push([segments, ""]);
    return out;
  }

  private find(node: TrieNode<T>, segs: string[], i: number, verb: string, method: string, walk: Walk): Leaf<T> | undefined {
    if (i === segs.length) {
      const leaf = node.leaves.get(verb)?.get(method);
      if (leaf) {
        return leaf;
      }
    } else {
      const seg = segs[i]!;
      if (node.literals.size > 0) {
        const next = literalChild(node, seg, walk);
        if (next) {
          const leaf = this.find(next, segs, i + 1, verb, method, walk);
          if (leaf) {
            return leaf;
          }
        }
      }
      // A variable never matches an empty segment ("/a//b", or "/a/" handled above).
      if (node.wildcard && seg !== "") {
        const leaf = this.find(node.wildcard, segs, i + 1, verb, method, walk);
        if (leaf) {
          return leaf;
        }
      }
    }
    // `**` takes every remaining segment, zero or more.
    return node.deep?.leaves.get(verb)?.get(method);
  }

  private collectMethods(node: TrieNode<T>, segs: string[], i: number, verb: string, into: Set<string>, walk: Walk): void {
    if (i === segs.length) {
      node.leaves.get(verb)?.forEach((_, m) => into.add(m));
    } else {
      const seg = segs[i]!;
      const next = literalChild(node, seg, walk);
      if (next) {
        this.collectMethods(next, segs, i + 1, verb, into, walk);
      }
      if (node.wildcard && seg !== "") {
        this.collectMethods(node.wildcard, segs, i + 1, verb, into, walk);
      }
    }
    node.deep?.leaves.get(verb)?.forEach((_, m) => into.add(m));
  }
}

/** Renders a parsed template back to its canonical text (for messages and route listings). */
export function render(t: PathTemplate): string {
  const parts: string[] = t.segments.map((s) => (s.kind === "literal" ? s.value : s.kind === "wildcard" ? "*" : "**"));
  for (const v of [...t.variables].reverse()) {
    const inner = parts.slice(v.start, v.end).join("/");
    const text = v.multiSegment ? `{${v.fieldPath.join(".")}=${inner}}` : `{${v.fieldPath.join(".")}}`;
    parts.splice(v.start, v.end - v.start, text);
  }
  return "/" + parts.join("/") + (t.verb !== undefined ? ":" + t.verb : "");
}

/**
 * The value of a variable from the matched raw segments: fully decoded for a single segment,
 * `%2F` kept for a multi-segment one. `**` at the end runs to the last segment.
 */
export function variableValue(
  template: PathTemplate,
  v: PathTemplate["variables"][number],
  segments: readonly string[],
  decodeOne: (raw: string) => string,
  decodeMulti: (raw: string) => string,
): string {
  const deepEnd = v.end === template.segments.length && template.segments[v.end - 1]?.kind === "deep";
  const end = deepEnd ? segments.length : v.end;
  if (!v.multiSegment) {
    return decodeOne(segments[v.start]!);
  }
  const out: string[] = [];
  for (let i = v.start; i < end; i++) {
    out.push(decodeMulti(segments[i]!));
  }
  return out.join("/");
}
