import { getOption, ScalarType, type DescField, type DescMessage, type DescMethod, type DescService } from "@bufbuild/protobuf";
import type { UniversalHandler } from "@connectrpc/connect/protocol";
import { http } from "../../gen/google/api/annotations_pb.js";
import type { HttpRule } from "../../gen/google/api/http_pb.js";
import { fieldByName, isFieldTarget, resolveFieldTarget, type FieldTarget, type TargetRefusal } from "./field-target.js";
import { joinBasePath, parsePathTemplate, TemplateError, type PathTemplate, type TemplateVariable } from "./path-template.js";

export const httpBodyTypeName = "google.api.HttpBody";

/** Where the HTTP body goes in the request message. */
export type BodyRule =
  | { readonly kind: "none" }
  | { readonly kind: "all" } // body: "*"
  | { readonly kind: "field"; readonly field: DescField } // body: "f"
  | { readonly kind: "raw"; readonly field: DescField | undefined }; // HttpBody: the message itself, or field f

/** What the HTTP response body is made of. */
export type ResponseRule =
  | { readonly kind: "message" }
  | { readonly kind: "field"; readonly field: DescField } // response_body: "f"
  | { readonly kind: "raw"; readonly field: DescField | undefined }; // HttpBody

/**
 * The status of a successful answer, declared per method (never chosen by the handler): e.g. 201
 * for a creation, 204 for an answer without a body. With `unsetBodyStatus`, an answer whose
 * `response_body` field is unset gets that status and no body (e.g. 204).
 */
export interface SuccessStatus {
  readonly status?: number;
  readonly unsetBodyStatus?: number;
  /** The media type of an HttpBody answer whose `content_type` is empty (HttpBody answers only). */
  readonly contentType?: string;
}

export interface PathBinding {
  readonly variable: TemplateVariable;
  readonly target: FieldTarget;
}

/**
 * One HTTP route of one RPC, compiled from its google.api.http rule. The transcoder serves it
 * (as a Binding, with the RPC's handler); the API description is generated from it.
 */
export interface Route {
  readonly httpMethod: string;
  readonly template: PathTemplate;
  /** Base path + template, as written. */
  readonly pattern: string;
  readonly rpc: DescMethod;
  /** "pkg.Service/Method" */
  readonly rpcName: string;
  readonly pathBindings: readonly PathBinding[];
  readonly body: BodyRule;
  readonly response: ResponseRule;
  /** The status of a successful answer (200 unless the method declares another). */
  readonly status: number;
  /** When set: the status of an answer whose response_body field is unset (sent without a body). */
  readonly unsetBodyStatus: number | undefined;
  /** The declared media type of an HttpBody answer, if any. */
  readonly contentType: string | undefined;
  readonly loose: boolean;
  /** Timestamps of the JSON answer written with at least millisecond digits (`.000Z`). */
  readonly timestampMillis: boolean;
  /** Resolves a query (or form) key to its target, or a reason to refuse it. Cached. */
  readonly argumentTarget: (key: string) => FieldTarget | TargetRefusal;
}

/** A route with the handler that serves it. */
export interface Binding extends Route {
  readonly handler: UniversalHandler;
}

/** How a service's routes are mounted. */
export interface RouteMount {
  /** Mount path of the service's routes; default "/". */
  readonly basePath?: string;
  /** Seed-004 style: form bodies and JSON bodies on GET; arguments from query/body/form on every method. */
  readonly looseArguments?: boolean;
  /**
   * Timestamps in JSON answers always carry a fraction of at least three digits, as a
   * JavaScript Date's JSON does (`2014-05-16T09:47:11.000Z`); proto3 JSON writes none on a
   * whole second (`2014-05-16T09:47:11Z`). Finer fractions are kept as they are.
   */
  readonly timestampMillis?: boolean;
  /** The success status of a method's REST answer when it is not 200 (read once, here). */
  readonly successStatus?: (method: DescMethod) => SuccessStatus | undefined;
}

/** Every route of a service's google.api.http rules, in declaration order. Throws BindingError. */
export function compileServiceRoutes(service: DescService, mount: RouteMount = {}): Route[] {
  const { basePath = "/", looseArguments = false, timestampMillis = false, successStatus } = mount;
  const routes: Route[] = [];
  for (const method of service.methods) {
    for (const rule of httpRules(method)) {
      routes.push(compileRoute(rule, method, basePath, looseArguments, successStatus?.(method), timestampMillis));
    }
  }
  return routes;
}

export class BindingError extends Error {
  override readonly name = "BindingError";
}

/** The method's google.api.http rule and its additional bindings, flattened. */
export function httpRules(method: DescMethod): HttpRule[] {
  const rule = getOption(method, http);
  if (rule.pattern.case === undefined) {
    return [];
  }
  const out: HttpRule[] = [rule];
  for (const extra of rule.additionalBindings) {
    if (extra.additionalBindings.length > 0) {
      throw new BindingError(`${method.parent.typeName}.${method.name}: additional_bindings cannot nest`);
    }
    out.push(extra);
  }
  return out;
}

export function compileRoute(
  rule: HttpRule,
  rpc: DescMethod,
  basePath: string,
  loose: boolean,
  success: SuccessStatus = {},
  timestampMillis = false,
): Route {
  const rpcName = `${rpc.parent.typeName}/${rpc.name}`;
  const fail = (reason: string): never => {
    throw new BindingError(`${rpcName}: ${reason}`);
  };
  if (rpc.methodKind !== "unary") {
    fail("only unary methods can have REST bindings");
  }
  let httpMethod: string;
  let path: string;
  switch (rule.pattern.case) {
    case "get":
    case "put":
    case "post":
    case "delete":
    case "patch":
      httpMethod = rule.pattern.case.toUpperCase();
      path = rule.pattern.value;
      break;
    case "custom":
      httpMethod = rule.pattern.value.kind.toUpperCase();
      path = rule.pattern.value.path;
      break;
    default:
      return fail("no pattern");
  }
  const pattern = joinBasePath(basePath, path);
  let template: PathTemplate;
  try {
    template = parsePathTemplate(pattern);
  } catch (e) {
    return fail(e instanceof TemplateError ? e.message : String(e));
  }
  const input = rpc.input;
  const pathBindings = template.variables.map((variable): PathBinding => {
    const target = resolveFieldTarget(input, variable.fieldPath);
    if (!isFieldTarget(target)) {
      return fail(`path variable {${variable.fieldPath.join(".")}}: ${target.reason}`);
    }
    const leaf = target.fields[target.fields.length - 1]!;
    if (target.repeated) {
      fail(`path variable {${target.path}} is repeated`);
    }
    if (variable.multiSegment && !(leaf.fieldKind === "scalar" && leaf.scalar === ScalarType.STRING)) {
      fail(`path variable {${target.path}} spans several segments, so it must be a string field`);
    }
    return { variable, target };
  });
  const body = bodyRule(rule.body, input, fail);
  const response = responseRule(rule.responseBody, rpc.output, fail);
  const status = success.status || 200;
  if (!Number.isInteger(status) || status < 200 || status > 299) fail(`success status ${status} is not a 2xx status`);
  const unsetBodyStatus = success.unsetBodyStatus || undefined;
  if (unsetBodyStatus !== undefined) {
    if (!Number.isInteger(unsetBodyStatus) || unsetBodyStatus < 200 || unsetBodyStatus > 299) {
      fail(`unset-body status ${unsetBodyStatus} is not a 2xx status`);
    }
    if (response.kind === "message" || (response.kind === "raw" && response.field === undefined)) {
      fail("an unset-body status needs a response_body field");
    }
  }
  const contentType = success.contentType || undefined;
  if (contentType !== undefined && response.kind !== "raw") {
    fail(`a declared content type (${contentType}) needs a google.api.HttpBody answer`);
  }
  return {
    httpMethod,
    template,
    pattern,
    rpc,
    rpcName,
    pathBindings,
    body,
    response,
    status,
    unsetBodyStatus,
    contentType,
    loose,
    timestampMillis,
    argumentTarget: argumentResolver(input, pathBindings, body, loose),
  };
}

function bodyRule(body: string, input: DescMessage, fail: (r: string) => never): BodyRule {
  if (body === "") {
    return { kind: "none" };
  }
  if (body === "*") {
    return input.typeName === httpBodyTypeName ? { kind: "raw", field: undefined } : { kind: "all" };
  }
  const field = fieldByName(input, body);
  if (!field || field.name !== body) {
    return fail(`body "${body}" is not a field of ${input.typeName}`);
  }
  if (field.fieldKind === "message" && field.message.typeName === httpBodyTypeName) {
    return { kind: "raw", field };
  }
  return { kind: "field", field };
}

function responseRule(responseBody: string, output: DescMessage, fail: (r: string) => never): ResponseRule {
  if (responseBody === "") {
    return output.typeName === httpBodyTypeName ? { kind: "raw", field: undefined } : { kind: "message" };
  }
  const field = fieldByName(output, responseBody);
  if (!field || field.name !== responseBody) {
    return fail(`response_body "${responseBody}" is not a field of ${output.typeName}`);
  }
  if (field.fieldKind === "message" && field.message.typeName === httpBodyTypeName) {
    return { kind: "raw", field };
  }
  return { kind: "field", field };
}

// Enough for every real parameter name; stops a stream of made-up names from growing it.
const maxCachedArguments = 512;

function argumentResolver(
  input: DescMessage,
  pathBindings: readonly PathBinding[],
  body: BodyRule,
  loose: boolean,
): (key: string) => FieldTarget | TargetRefusal {
  const cache = new Map<string, FieldTarget | TargetRefusal>();
  const pathFields = pathBindings.map((b) => b.target.path);
  return (key) => {
    let t = cache.get(key);
    if (t === undefined) {
      t = resolveArgument(input, key, pathFields, body, loose);
      if (isFieldTarget(t) && cache.size < maxCachedArguments) {
        cache.set(key, t);
      }
    }
    return t;
  };
}

function resolveArgument(
  input: DescMessage,
  key: string,
  pathFields: readonly string[],
  body: BodyRule,
  loose: boolean,
): FieldTarget | TargetRefusal {
  const target = resolveFieldTarget(input, key.split("."));
  if (!isFieldTarget(target) || loose) {
    // Seed-004 style: any field may come from anywhere; the path still wins.
    return target;
  }
  for (const p of pathFields) {
    if (p === target.path || p.startsWith(target.path + ".") || target.path.startsWith(p + ".")) {
      return { reason: `"${p}" comes from the path`, unknown: false };
    }
  }
  if (body.kind === "raw" && body.field === undefined) {
    return { reason: `${input.typeName} takes every field from the body`, unknown: true };
  }
  // A field of the request in the query of a `body: "*"` route is known, in the wrong place
  // (seed 000 calls its body fields "Request Parameters"): said so, not called unknown.
  if (body.kind === "all") {
    return { reason: "every field comes from the JSON body", unknown: false };
  }
  if ((body.kind === "field" || body.kind === "raw") && target.fields[0] === body.field) {
    return { reason: `"${body.field!.name}" comes from the body`, unknown: false };
  }
  return target;
}
