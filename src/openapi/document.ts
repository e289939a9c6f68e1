// The OpenAPI 3.1 description of Tessera's REST API, built from the routes the server compiles
// (src/rest-routes.ts -> src/transcode) and the methods' access and error options, so it
// describes exactly what is served. Run at generation time (scripts/protoc-gen-openapi.ts) with
// descriptors that keep the proto comments, which become the descriptions.
import { create, getOption, hasOption, toJson, type DescEnum, type DescField, type DescMessage, type DescMethod, type DescService } from "@bufbuild/protobuf";
import { Credential, errors as errorsOption, type AccessRule } from "../../gen/tessera/options/v1/options_pb.js";
import { accessRules } from "../access/interceptor.js";
import { restRoutes } from "../rest-routes.js";
import { isFieldTarget } from "../transcode/field-target.js";
import type { Route } from "../transcode/binding.js";
import { RouteTable } from "../transcode/route-table.js";
import { httpStatusByCode } from "../transcode/status.js";
import { sessionCookieName } from "../access/session-cookie.js";
import { exampleBaseUrl } from "./example.js";
import { openApiPath } from "./paths.js";
import { alwaysWritten, SchemaSet, type JsonSchema } from "./schemas.js";
import { bufCurlHeaders, challengeOf, securityOf, securitySchemes, type SecurityRequirement } from "./security.js";

export type Describe = (desc: DescService | DescMethod | DescMessage | DescField | DescEnum) => string | undefined;

export interface DocumentInput {
  /** Tessera's services, in the order the document lists them. */
  readonly services: readonly DescService[];
  /** Tessera's version (package.json). */
  readonly version: string;
  /** The proto comment of an element, cleaned up (undefined: none). */
  readonly describe: Describe;
}

export { exampleBaseUrl } from "./example.js";

const description = `Tessera's JSON API over HTTP (REST), generated from the protos' \`google.api.http\` bindings by the code that serves them.

Every operation is also an RPC, served on the same port over gRPC, gRPC-Web and Connect: its \`x-rpc\` names it (\`package.Service/Method\`) and \`x-buf-curl\` shows a call. The protos are served by gRPC server reflection.

- JSON keys are the fields' JSON names. Answers always carry the fields with implicit presence (plain proto3 scalars, enums, lists, maps), zero values included; optional and message fields appear only when set. 64-bit integers are JSON strings. Request bodies also accept the proto field names and ignore unknown keys.
- HEAD is answered, without a body, on the GET operations without side effects (their RPC declared \`idempotency_level = NO_SIDE_EFFECTS\`). On the other GET operations (one that mints or spends a token, or logs in) a HEAD is 405 \`METHOD_NOT_ALLOWED\` with \`Allow\` (which does not list HEAD), and nothing runs: a link checker's HEAD spends no token.
- The query is strict: a parameter that names no field is 400 \`UNKNOWN_QUERY_PARAMETER\`, one that names a field the path or the JSON body carries 400 \`INVALID_QUERY_PARAMETER\`, except \`_\` on a GET or HEAD (jQuery's cache-buster, \`$.ajax({ cache: false })\`), which is ignored.
- The public answers a cache may keep (the keys, the discovery document, the version) carry a strong \`ETag\`; a GET or HEAD whose \`If-None-Match\` names it is answered 304 Not Modified, without a body.
- Errors are \`{"code", "message", "details"}\`: \`code\` is the Connect code name, \`details\` the error details in Connect's JSON form. Every error answer carries \`Cache-Control: no-store\` (and \`Pragma: no-cache\`): no cache keeps one, a public route's included. A 401 of a route taking a Bearer or Basic credential carries \`WWW-Authenticate\`; a 429 and a 503 carry \`Retry-After\`.
- A \`connect-timeout-ms\` header sets the call's deadline, as Connect sends it: a call still unanswered at its deadline is 504 \`deadline_exceeded\`.
- The JWT API is mounted at \`/jwt\` by default (TESSERA_JWT_BASE_PATH); the \`/openapi.json\` a server serves shows its own mount, and only the APIs it serves.`;

/** Connect code name -> HTTP status: the error responses, by status. */
const errorResponseName: Record<number, string> = {
  400: "BadRequest",
  401: "Unauthorized",
  403: "Forbidden",
  404: "NotFound",
  409: "Conflict",
  413: "ContentTooLarge",
  415: "UnsupportedMediaType",
  429: "TooManyRequests",
  499: "ClientClosedRequest",
  500: "InternalError",
  501: "NotImplemented",
  503: "Unavailable",
  504: "GatewayTimeout",
};

/**
 * The methods whose answers a cache may keep (their handlers mark them \`public, max-age=N\`, or
 * \`public, no-cache\`: services/key.ts, services/jwt.ts). Their 200 answers to a GET carry a
 * strong ETag, and a GET whose If-None-Match names it is 304 (transcode/conditional.ts); no
 * other answer has an ETag.
 * test/openapi/reality.test.ts holds the server to this list both ways.
 */
const cacheableMethods = new Set([
  "tessera.jwt.v1.JwtService/GetPublicKey",
  "tessera.jwt.v1.JwtService/GetVersion",
  "tessera.key.v1.KeyService/GetJwks",
  "tessera.key.v1.KeyService/GetOpenIdConfiguration",
]);

/**
 * The methods whose answers set or clear the seed 003 session cookie (access/session-cookie.ts:
 * the exchange's handler asks for it, issueSessionCookie; a cookie logout's answer clears it),
 * with what the `Set-Cookie` of their success answer does: a client generated from the document
 * learns that a call hands it a cookie, or ends one. test/openapi/reality.test.ts holds the
 * server to this list both ways.
 */
const cookieMethods: Record<string, string> = {
  "tessera.authtoken.v1.AuthenticationTokenService/ExchangeToken":
    "The login session the exchange starts, as the `tessera_session` cookie: `Max-Age` is the seconds it lives (TESSERA_SESSION_COOKIE_TTL_SECONDS, or less when the token was made from a cookie session that ends sooner), `Secure` under TLS or with an https TESSERA_PUBLIC_URL, or as TESSERA_COOKIE_SECURE says. Not sent when the request carries a valid session cookie of the same user, which is kept.",
  "tessera.usertoken.v1.UserTokenService/Logout":
    "Clears the `tessera_session` cookie (empty value, `Max-Age=0`) when the call ended a cookie session, that is when it was made with the cookie and no bearer token. Not sent on a user token's logout.",
};

/**
 * The methods whose error answers clear the session cookie too (a cookie logout's, whatever its
 * status: session-cookie.ts), with what their `Set-Cookie` does; on the statuses an answer may
 * have once the credential check has begun.
 */
const cookieClearingErrors: Record<string, string> = {
  "tessera.usertoken.v1.UserTokenService/Logout":
    "Clears the `tessera_session` cookie (empty value, `Max-Age=0`) when the call was made with the cookie and no bearer token from a page the origin check lets through: a logout refused because the cookie session has already ended (expired, logged out, ended with the credential it came from) or is no session leaves no dead cookie in the browser. Not sent on a logout the origin check refuses (403), nor on a user token's logout.",
};
const cookieClearingStatuses = new Set([401, 500, 503, 504]);

const setCookieSchema = {
  type: "string",
  pattern: `^${sessionCookieName}=[A-Za-z0-9_-]*; Path=/; Max-Age=[0-9]+; HttpOnly; SameSite=Lax(; Secure)?$`,
};

/** Whether the route's success answer is validated (ETag, If-None-Match, 304). */
function conditional(route: Route): boolean {
  return cacheableMethods.has(route.rpcName) && route.httpMethod === "GET" && route.status === 200;
}

export function buildOpenApiDocument(input: DocumentInput): JsonSchema {
  const { services, describe } = input;
  const rules = accessRules({ services, publicServices: [] });
  const schemas = new SchemaSet(describe);
  const routes = services.flatMap((s) => restRoutes(s));
  // The same duplicate check the server makes at start-up.
  const table = new RouteTable<Route>((r) => r.rpcName);
  for (const r of routes) {
    table.add(r.httpMethod, r.template, r);
    schemas.noteOutput(r.rpc.output);
  }

  const paths: Record<string, Record<string, unknown>> = {};
  const operationIds = new Set<string>();
  const usedStatuses = new Set<number>();
  for (const route of routes) {
    const rule = rules.get(`${route.rpcName}`);
    if (rule === undefined || rule === "public") throw new Error(`${route.rpcName}: no access rule`);
    const operation = describeOperation(route, rule, schemas, describe, usedStatuses);
    let id = `${route.rpc.parent.typeName}.${route.rpc.name}`;
    for (let n = 1; operationIds.has(id); n++) id = `${route.rpc.parent.typeName}.${route.rpc.name}_${n}`;
    operationIds.add(id);
    const path = openApiPath(route);
    const item = (paths[path] ??= {});
    const method = route.httpMethod.toLowerCase();
    if (!["get", "put", "post", "delete", "patch", "options", "head", "trace"].includes(method)) {
      throw new Error(`${route.rpcName}: HTTP method ${route.httpMethod} cannot be described in OpenAPI 3.1`);
    }
    item[method] = { operationId: id, ...operation };
  }

  const responses: Record<string, unknown> = {};
  if (routes.some(conditional)) responses.NotModified = notModifiedResponse;
  for (const status of [...usedStatuses].sort((a, b) => a - b)) {
    responses[errorResponseName[status]!] = errorResponse(status);
  }
  return {
    openapi: "3.1.0",
    info: {
      title: "Tessera",
      version: input.version,
      description,
      license: { name: "Apache-2.0", identifier: "Apache-2.0" },
    },
    tags: services
      .filter((s) => routes.some((r) => r.rpc.parent === s))
      .map((s) => ({ name: s.typeName, ...optional("description", describe(s)) })),
    paths,
    components: {
      schemas: { Error: errorSchema, ...sortedKeys(schemas.components) },
      parameters: { ...(routes.some(conditional) ? { "If-None-Match": ifNoneMatchParameter } : {}), "connect-timeout-ms": timeoutParameter },
      responses,
      headers: {
        ...(routes.some(conditional) ? { ETag: etagHeader } : {}),
        "WWW-Authenticate": {
          description:
            "The challenge of the route's credential scheme. Bearer (RFC 6750): `Bearer` when no token was sent, `Bearer error=\"invalid_request\"` for a malformed credential or a missing client id, `Bearer error=\"invalid_token\"` for a refused token. Basic (RFC 7617): `Basic realm=\"tessera\", charset=\"UTF-8\"`.",
          required: true,
          schema: { type: "string" },
        },
        "Retry-After": {
          description: "Seconds until the caller may try again.",
          required: true,
          schema: { type: "string", pattern: "^[0-9]+$" },
        },
      },
      securitySchemes,
    },
  };
}

function describeOperation(
  route: Route,
  rule: AccessRule,
  schemas: SchemaSet,
  describe: Describe,
  usedStatuses: Set<number>,
): Record<string, unknown> {
  const method = route.rpc;
  const text = describe(method);
  const tokenArgument = rule.tokenField !== "" && isFieldTarget(route.argumentTarget(rule.tokenField));
  if (tokenArgument && rule.tokenField !== securitySchemes.jwtAccessTokenArgument.name) {
    throw new Error(`${route.rpcName}: token field "${rule.tokenField}" has no security scheme`);
  }
  const security: SecurityRequirement[] = securityOf(rule, route.httpMethod, tokenArgument);
  const requestBody = describeRequestBody(route, schemas);
  return {
    tags: [method.parent.typeName],
    ...optional("summary", text ? summaryOf(text) : undefined),
    ...optional("description", text),
    parameters: [
      ...pathParameters(route, schemas),
      ...queryParameters(route, schemas),
      ...(conditional(route) ? [{ $ref: "#/components/parameters/If-None-Match" }] : []),
      { $ref: "#/components/parameters/connect-timeout-ms" },
    ],
    ...(requestBody ? { requestBody } : {}),
    responses: { ...successResponses(route, schemas), ...errorResponses(route, rule, usedStatuses) },
    security,
    "x-rpc": route.rpcName,
    "x-buf-curl": bufCurl(route, rule),
  };
}

function pathParameters(route: Route, schemas: SchemaSet): unknown[] {
  return route.pathBindings.map(({ variable, target }) => ({
    name: variable.fieldPath.join("."),
    in: "path",
    required: true,
    ...parameterSchema(schemas.field(target.fields[target.fields.length - 1]!, "input")),
  }));
}

/** A parameter's description beside its schema, as OpenAPI shows it. */
function parameterSchema(field: JsonSchema): { description?: string; schema: JsonSchema } {
  const { description, ...schema } = field;
  return { ...optional("description", description as string | undefined), schema };
}

/** Every argument the route takes from the query string, found as the transcoder resolves them. */
function queryParameters(route: Route, schemas: SchemaSet): unknown[] {
  const pathFields = new Set(route.pathBindings.map((b) => b.target.path));
  const out: unknown[] = [];
  for (const name of argumentNames(route.rpc.input, [], new Set())) {
    const target = route.argumentTarget(name);
    if (!isFieldTarget(target) || pathFields.has(target.path)) continue;
    const leaf = target.fields[target.fields.length - 1]!;
    out.push({
      name,
      in: "query",
      ...parameterSchema(schemas.field(leaf, "input")),
      ...(leaf.fieldKind === "list" ? { style: "form", explode: true } : {}),
    });
  }
  return out;
}

/** Dotted JSON-name paths of the fields that could take a textual argument. */
function argumentNames(message: DescMessage, prefix: string[], seen: Set<string>): string[] {
  if (seen.has(message.typeName)) return [];
  const inner = new Set(seen).add(message.typeName);
  const names: string[] = [];
  for (const f of message.fields) {
    const path = [...prefix, f.jsonName];
    names.push(path.join("."));
    if (f.fieldKind === "message" && !f.message.typeName.startsWith("google.protobuf.")) {
      names.push(...argumentNames(f.message, path, inner));
    }
  }
  return names;
}

function describeRequestBody(route: Route, schemas: SchemaSet): unknown {
  const input = route.rpc.input;
  const body = route.body;
  if (body.kind === "raw") {
    return { required: false, content: { "*/*": { schema: { type: "string", format: "binary" } } } };
  }
  if (route.loose) {
    // Seed 004 style: the same arguments as a JSON body (GET included) or a form.
    const schema = schemas.message(input, "input");
    return {
      required: false,
      description: "The arguments, as a JSON object or a form (URL-encoded, or multipart with text fields only); query arguments may be given instead, or beside it for other fields (one given in both is 400).",
      content: { "application/json": { schema }, "application/x-www-form-urlencoded": { schema }, "multipart/form-data": { schema } },
    };
  }
  switch (body.kind) {
    case "none":
      return undefined;
    case "all":
      return { required: false, content: { "application/json": { schema: schemas.message(input, "input") } } };
    case "field":
      return { required: false, content: { "application/json": { schema: schemas.field(body.field, "input") } } };
  }
}

function successResponses(route: Route, schemas: SchemaSet): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const output = route.rpc.output;
  const rule = route.response;
  const description = route.status === 204 ? "Success, no content." : "Success.";
  if (route.status === 204) {
    out["204"] = { description };
    return out;
  }
  let content: Record<string, unknown>;
  switch (rule.kind) {
    case "message":
      content = { "application/json": { schema: schemas.message(output, "output") } };
      break;
    case "field": {
      let schema = schemas.field(rule.field, "output");
      // An unset field is written as null, unless an unset-body status answers it.
      if (route.unsetBodyStatus === undefined && !alwaysWritten(rule.field)) schema = { anyOf: [schema, { type: "null" }] };
      content = { "application/json": { schema } };
      break;
    }
    case "raw":
      content = { [route.contentType ?? "*/*"]: { schema: { type: "string" } } };
      break;
  }
  const headers = {
    ...(conditional(route) ? { ETag: { $ref: "#/components/headers/ETag" } } : {}),
    ...(route.rpcName in cookieMethods ? { "Set-Cookie": { description: cookieMethods[route.rpcName], required: false, schema: setCookieSchema } } : {}),
  };
  out[String(route.status)] = { description, ...(Object.keys(headers).length > 0 ? { headers } : {}), content };
  if (conditional(route)) out["304"] = { $ref: "#/components/responses/NotModified" };
  if (route.unsetBodyStatus !== undefined) {
    const field = rule.kind === "message" ? undefined : rule.field;
    out[String(route.unsetBodyStatus)] = {
      description: `Success, no content: \`${field?.jsonName}\` is unset.`,
    };
  }
  return out;
}

/** The errors the route can answer, by status: the transcoder's, the access rule's, the method's own. */
function errorResponses(route: Route, rule: AccessRule, usedStatuses: Set<number>): Record<string, unknown> {
  // 504: the caller's deadline (connect-timeout-ms), which holds on every route.
  const statuses = new Set<number>([400, 500, 503, 504]);
  const readsBody = route.body.kind !== "none" || route.loose;
  if (readsBody) statuses.add(413);
  if (readsBody && route.body.kind !== "raw") statuses.add(415);
  const codes: string[] = [];
  if (rule.credential !== Credential.NONE) codes.push("unauthenticated");
  if (rule.credential === Credential.JWT_PASSWORD) codes.push("permission_denied");
  if (hasOption(route.rpc, errorsOption)) codes.push(...getOption(route.rpc, errorsOption).codes);
  for (const code of codes) {
    const status = httpStatusByCode[code];
    if (status === undefined) throw new Error(`${route.rpcName}: unknown error code "${code}" in (tessera.options.v1.errors)`);
    statuses.add(status);
  }
  const clearing = cookieClearingErrors[route.rpcName];
  const setCookie = (status: number) =>
    clearing !== undefined && cookieClearingStatuses.has(status) ? { "Set-Cookie": { description: clearing, required: false, schema: setCookieSchema } } : {};
  const out: Record<string, unknown> = {};
  for (const status of [...statuses].sort((a, b) => a - b)) {
    usedStatuses.add(status);
    if (status === 401) {
      const example = challengeOf(rule);
      const headers = { ...(example ? { "WWW-Authenticate": { $ref: "#/components/headers/WWW-Authenticate", example } } : {}), ...setCookie(status) };
      out["401"] = {
        description: rule.optional
          ? "Unauthenticated: the credential given is malformed (`Bearer` with no or several tokens). The credential is optional: without one, or with a token that is not valid, the route answers as without one."
          : "Unauthenticated: the credential is missing or not valid.",
        ...(Object.keys(headers).length > 0 ? { headers } : {}),
        content: errorContent,
      };
    } else if (Object.keys(setCookie(status)).length > 0) {
      const { headers, content, ...shared } = errorResponse(status) as { headers?: Record<string, unknown>; content: unknown };
      out[String(status)] = { ...shared, headers: { ...headers, ...setCookie(status) }, content };
    } else {
      out[String(status)] = { $ref: `#/components/responses/${errorResponseName[status]}` };
    }
  }
  return out;
}

const etagHeader = {
  description:
    "A strong entity tag of the bytes sent (RFC 9110 8.8.3): another representation (gzip) has another, and a key rotation changes the key set's. Send it back in `If-None-Match` to revalidate a cached copy.",
  required: true,
  schema: { type: "string", pattern: '^"[\\x21\\x23-\\x7e]*"$' },
};

const ifNoneMatchParameter = {
  name: "If-None-Match",
  in: "header",
  required: false,
  description:
    "Entity tags of cached copies (RFC 9110 13.1.2): a list of them, or `*`. When one names the current `ETag` (weak comparison), the answer is 304 Not Modified. A value that is no such list is ignored.",
  schema: { type: "string" },
};

/** The caller's deadline, which the transcoder reads on every route as Connect does. */
const timeoutParameter = {
  name: "connect-timeout-ms",
  in: "header",
  required: false,
  description:
    "The call's deadline, in milliseconds from its arrival (1 to 10 digits, as Connect sends it). A call still unanswered at its deadline is 504 `deadline_exceeded`, and one whose deadline has passed on arrival (`0`) ends before it runs; one further away than 2^31 − 1 ms (24.8 days) is no deadline. Another value is 400.",
  schema: { type: "string", pattern: "^[0-9]{1,10}$" },
};

const notModifiedResponse = {
  description:
    "Not Modified: `If-None-Match` names the current `ETag` (or is `*`). No body; the 200's headers but its `Content-Type`, `Cache-Control` included, so a cached copy is fresh again for its `max-age`.",
  headers: { ETag: { $ref: "#/components/headers/ETag" } },
};

const errorContent = { "application/json": { schema: { $ref: "#/components/schemas/Error" } } };

function errorResponse(status: number): unknown {
  const codes = Object.keys(httpStatusByCode).filter((c) => httpStatusByCode[c] === status);
  const byTranscoder: Record<number, string> = {
    400: "A malformed request (unknown or invalid argument, invalid JSON) or a request the method refuses",
    404: "Not found",
    413: "The request body is larger than TESSERA_BODY_LIMIT_BYTES (code resource_exhausted)",
    415: "The request body's Content-Type or Content-Encoding is not accepted (code invalid_argument)",
    429: "Too many failed logins (or sign-ups from one address): the caller is locked out until Retry-After has passed",
    500: "An internal error (details only in the server log)",
    503: "The store is unavailable, or (logins and sign-ups) every password hasher is busy: retry after Retry-After",
    504: "The caller's deadline (`connect-timeout-ms`) passed before the answer was ready",
  };
  const text = byTranscoder[status] ?? "Error";
  const headers = status === 429 || status === 503 ? { headers: { "Retry-After": { $ref: "#/components/headers/Retry-After" } } } : {};
  return {
    description: status === 413 || status === 415 ? `${text}.` : `${text} (code ${codes.join(", ")}).`,
    ...headers,
    content: errorContent,
  };
}

const errorSchema: JsonSchema = {
  type: "object",
  description: "Every error answer. `code` is the Connect code name; the status follows from it.",
  properties: {
    code: { type: "string", enum: Object.keys(httpStatusByCode) },
    message: { type: "string", description: "What went wrong, for the caller." },
    details: {
      type: "array",
      description: "Error details, as Connect's JSON encoding of google.protobuf.Any.",
      items: {
        type: "object",
        properties: {
          type: { type: "string", description: "The detail's fully-qualified message type, e.g. `google.rpc.RetryInfo`." },
          value: { type: "string", contentEncoding: "base64", description: "The detail message, binary, base64 without padding." },
          debug: { description: "The detail as JSON, when the server sends it." },
        },
        required: ["type", "value"],
        additionalProperties: false,
      },
    },
  },
  required: ["code", "message", "details"],
  additionalProperties: false,
};

function bufCurl(route: Route, rule: AccessRule): string {
  const data = JSON.stringify(toJson(route.rpc.input, create(route.rpc.input), { alwaysEmitImplicit: true }));
  return ["buf curl --http2-prior-knowledge", ...bufCurlHeaders(rule), `-d '${data}'`, `${exampleBaseUrl}/${route.rpcName}`].join(" ");
}

/** The first sentence of a comment, on one line, as plain text (summaries are not Markdown). */
export function summaryOf(text: string): string {
  // Each run of white space holding a line break is one space: /\s*\n\s*/g, which says the same,
  // tried each white space character with the rest of its run, time quadratic in a run of tabs.
  const paragraph = text
    .split(/\n\s*\n/, 1)[0]!
    .replace(/\s+/g, (run) => (run.includes("\n") ? " " : run))
    .replaceAll("`", "");
  const m = /^(.+?[.!?])(\s|$)/.exec(paragraph);
  return m ? m[1]! : paragraph;
}

function optional<K extends string>(key: K, value: string | undefined): { [P in K]?: string } {
  return (value ? { [key]: value } : {}) as { [P in K]?: string };
}

function sortedKeys<T>(o: Record<string, T>): Record<string, T> {
  return Object.fromEntries(Object.entries(o).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}
